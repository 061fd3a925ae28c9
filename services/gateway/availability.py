"""A database outage as an answer a client can act on: HTTP 503, `Retry-After`, and
`extensions.code` UNAVAILABLE (the database cannot be reached) or TIMEOUT (it gave up on a
statement: `statement_timeout`, `lock_timeout`).

This module is the one place that decides which exceptions mean "the database is not there right
now" rather than "the code is wrong". Both reach the gateway as unexpected exceptions; a bug stays
"Internal error." (HTTP 500 outside GraphQL), an outage becomes a retryable answer. Retrying is
safe: every mutation that moves points is idempotent under its key, and an outage never
acknowledges anything, so the client's retry either finds the first attempt committed (and gets
its answer) or does the work.

Two hooks, kept apart from the view so they survive changes to it:
- `OutageAwareMaskErrors` replaces MaskErrors in the schema: a resolver's outage becomes a GraphQL
  error with the code instead of "Internal error.", and marks the request;
- `DatabaseOutages` wraps the application: a marked request's response goes out as 503 with
  Retry-After, and an outage raised outside GraphQL (token checks, the OAuth and settlement
  routes) is answered 503 instead of 500.
"""

from __future__ import annotations

import errno
import logging
import socket
from contextvars import ContextVar
from dataclasses import dataclass

import asyncpg
from graphql import GraphQLError
from sqlalchemy import exc as sa_exc
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import MaskErrors

from shared.http import error_body

log = logging.getLogger("coalition.gateway")

RETRY_AFTER_SECONDS = 2  # a restart or a failover takes seconds; a client retrying sooner only adds load
UNAVAILABLE = "UNAVAILABLE"
TIMEOUT = "TIMEOUT"
MESSAGES = {
    UNAVAILABLE: "the database is unavailable; retry after a moment",
    TIMEOUT: "the database did not finish in time and cancelled the request; retry after a moment",
}

# Errno values of a socket that cannot reach the server, or lost it.
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
    }
)


@dataclass(frozen=True)
class Outage:
    code: str  # UNAVAILABLE or TIMEOUT

    @property
    def message(self) -> str:
        return MESSAGES[self.code]


def _classify_one(exc: BaseException) -> str | None:
    if isinstance(exc, asyncpg.QueryCanceledError | asyncpg.LockNotAvailableError):
        return TIMEOUT
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError  # SQLSTATE class 08: the connection failed or is gone
        | asyncpg.OperatorInterventionError  # 57: shutting down, starting up, crashed
        | asyncpg.InsufficientResourcesError  # 53: too many connections, disk full, out of memory
        | asyncpg.IdleInTransactionSessionTimeoutError,
    ):
        return UNAVAILABLE
    if isinstance(exc, asyncpg.InterfaceError):  # also raised for misuse: only a closed connection
        return UNAVAILABLE if "closed" in str(exc) else None
    if isinstance(exc, asyncpg.InternalClientError):
        # asyncpg lost track of the protocol: seen when a server shutting down sends its FATAL error
        # to an idle pooled connection just before closing it. The connection is discarded
        # (shared/sql.py); a retry gets a good one.
        return UNAVAILABLE
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.OperationalError):  # pool exhausted; PEP 249
        return UNAVAILABLE
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return UNAVAILABLE
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return UNAVAILABLE
    # A Unix socket that is gone (the embedded server stopped) is ENOENT without a file name; a
    # missing file the code opened names it, and is a bug.
    if isinstance(exc, OSError) and (
        exc.errno in _NETWORK_ERRNOS or (exc.errno == errno.ENOENT and exc.filename is None)
    ):
        return UNAVAILABLE
    return None


def outage_of(exc: BaseException | None) -> Outage | None:
    """The outage an exception stands for, or None when it is something else (a bug).

    Follows what wraps what: SQLAlchemy's `orig`, `raise … from`, and an exception raised while
    handling another (a rollback on a connection that died mid-transaction)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < 16:
        seen.add(id(exc))
        code = _classify_one(exc)
        if code is not None:
            return Outage(code)
        orig = getattr(exc, "orig", None)
        exc = orig if isinstance(orig, BaseException) else (exc.__cause__ or exc.__context__)
    return None


class _Marker:
    outage: Outage | None = None


_request: ContextVar[_Marker | None] = ContextVar("coalition_outage", default=None)


def _mark(outage: Outage) -> None:
    marker = _request.get()
    if marker is not None and marker.outage is None:
        marker.outage = outage


class OutageAwareMaskErrors(MaskErrors):
    """MaskErrors that tells an outage apart from a bug: the outage gets its code and message (and
    the response its 503); anything else unexpected is still masked."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        outage = outage_of(error.original_error)
        if outage is None:
            return super().anonymise_error(error)
        _mark(outage)  # logged with the other errors (graphql_errors.log_errors)
        return GraphQLError(
            outage.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": outage.code},
        )


def outage_response(outage: Outage, *, graphql: bool) -> JSONResponse:
    """503 with Retry-After; GraphQL-shaped, and for the other routes OAuth-shaped as well (RFC 6749's
    `temporarily_unavailable`), so OAuth clients and GraphQL clients both read it."""
    body: dict[str, object] = error_body(outage.code, outage.message)
    if not graphql:
        body = {"error": "temporarily_unavailable", "error_description": outage.message, **body}
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class DatabaseOutages:
    """Outermost application middleware: answers outages with 503, whoever raised them."""

    def __init__(self, app: ASGIApp, graphql_path: str = "/graphql") -> None:
        self.app = app
        self.graphql_path = graphql_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        marker = _Marker()
        token = _request.set(marker)
        started = False

        async def send_marked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if marker.outage is not None:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"retry-after"]
                    headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
                    message = {**message, "status": 503, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_marked)
        except Exception as exc:
            outage = outage_of(exc)
            if outage is None or started:
                raise
            log.warning("database %s on %s: %r", outage.code.lower(), scope.get("path"), exc)
            graphql = scope.get("path") == self.graphql_path
            await outage_response(outage, graphql=graphql)(scope, receive, send)
        finally:
            _request.reset(token)
