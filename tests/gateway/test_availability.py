"""Which exceptions are a database outage (a retryable 503) and which are bugs (still masked), and
the middleware that answers outages raised outside GraphQL. The outage drills themselves, with a
real PostgreSQL stopped under load, are in tests/e2e/test_faults.py."""

from __future__ import annotations

import errno

import asyncpg
import httpx
import pytest
from sqlalchemy import exc as sa_exc
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.gateway.availability import RETRY_AFTER_SECONDS, DatabaseOutages, outage_of


def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), "UNAVAILABLE"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "UNAVAILABLE"),
        (TimeoutError(), "UNAVAILABLE"),
        (OSError(errno.ENOENT, "No such file or directory"), "UNAVAILABLE"),  # a Unix socket gone
        (asyncpg.AdminShutdownError("terminating connection due to administrator command"), "UNAVAILABLE"),
        (asyncpg.CannotConnectNowError("the database system is starting up"), "UNAVAILABLE"),
        (asyncpg.ConnectionDoesNotExistError("connection was closed mid-operation"), "UNAVAILABLE"),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), "UNAVAILABLE"),
        (asyncpg.InterfaceError("connection is closed"), "UNAVAILABLE"),
        (sa_exc.TimeoutError("QueuePool limit of size 1 overflow 0 reached"), "UNAVAILABLE"),
        (sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True), "UNAVAILABLE"),
        (sa_exc.DBAPIError("SELECT 1", {}, asyncpg.AdminShutdownError("shutdown")), "UNAVAILABLE"),
        (_chained(RuntimeError("rollback failed"), ConnectionResetError()), "UNAVAILABLE"),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), "TIMEOUT"),
        (asyncpg.LockNotAvailableError("canceling statement due to lock timeout"), "TIMEOUT"),
        # Bugs and bad data stay bugs: masked as "Internal error.", HTTP 500 outside GraphQL.
        (ValueError("bad"), None),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/srv/key"), None),
        (asyncpg.InterfaceError("cannot perform operation: another operation is in progress"), None),
        (asyncpg.UniqueViolationError("duplicate key"), None),
        (asyncpg.InvalidCatalogNameError('database "x" does not exist'), None),
        (sa_exc.DBAPIError("SELECT 1", {}, asyncpg.UndefinedTableError("no such table")), None),
    ],
)
def test_outages_are_told_apart_from_bugs(exc: BaseException, code: str | None) -> None:
    found = outage_of(exc)
    assert (found.code if found else None) == code


def _app(error: BaseException) -> Starlette:
    async def failing(request: Request) -> Response:
        raise error

    routes = [Route("/oauth/token", failing, methods=["POST"]), Route("/graphql", failing, methods=["POST"])]
    return Starlette(routes=routes, middleware=[Middleware(DatabaseOutages)])


async def test_an_outage_outside_graphql_is_a_503_with_retry_after() -> None:
    transport = httpx.ASGITransport(app=_app(ConnectionRefusedError(errno.ECONNREFUSED, "refused")))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        oauth = await client.post("/oauth/token")
        graphql = await client.post("/graphql")
    for response in (oauth, graphql):
        assert response.status_code == 503
        assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
        assert response.json()["errors"][0]["extensions"] == {"code": "UNAVAILABLE"}
        assert "refused" not in response.text
    assert oauth.json()["error"] == "temporarily_unavailable"  # what OAuth clients read
    assert set(graphql.json()) == {"errors"}  # a GraphQL response has no other top-level keys


async def test_a_bug_outside_graphql_stays_a_500() -> None:
    transport = httpx.ASGITransport(app=_app(ValueError("internal detail")), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/oauth/token")
    assert response.status_code == 500
    assert "internal detail" not in response.text and "retry-after" not in response.headers
