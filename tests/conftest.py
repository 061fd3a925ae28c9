"""Fixtures shared by every test: a fresh, migrated PostgreSQL database per test session, and the
gateway application (lifespan run for real) with helpers to call it with real OAuth tokens.

The database comes from DATABASE_URL when it is set, else from the embedded server, exactly as
the application finds it. Tests build their data through the services' own functions.
"""

from __future__ import annotations

import os

# The suite's connection budget: PostgreSQL's default max_connections is 100, and one run holds the
# test pool below, the in-process gateway's, and the pools of the real servers the e2e and drill
# tests start (they inherit this environment). Small pools keep a run near 50 connections.
os.environ.setdefault("DB_POOL_SIZE", "6")
os.environ.setdefault("COALITION_ENV", "development")  # webhook receivers on 127.0.0.1
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from services.gateway.app import create_app
from services.identity import keys as identity_keys
from services.identity import member_tokens, tokens
from services.identity import service as identity
from shared.access import ADMIN_SCOPES, MEMBER_SCOPE
from shared.database import Database, drop_database, recreate_database, resolve_database_url
from shared.migrate import upgrade_to_head
from tests.factories import SeededPartner, make_partner


class _Tracebacks(logging.Handler):
    """Collects the records of our loggers that carry a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.name.startswith(("coalition", "strawberry")):
            self.records.append(record)


@pytest.fixture(autouse=True)
def no_traceback_for_expected_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test of the suite is also a test of the log: a traceback is for the unexpected, so a
    test that makes the in-process gateway log one fails, unless it is marked `logs_traceback`
    (it provokes a bug on purpose). Expected errors are one line: tests/gateway/test_logs.py."""
    handler = _Tracebacks()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    if handler.records and request.node.get_closest_marker("logs_traceback") is None:
        first = handler.records[0]
        pytest.fail(
            f"{len(handler.records)} traceback(s) logged, first by {first.name}: {first.getMessage()}"
        )


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    base = resolve_database_url()
    name = f"coalition_test_{os.getpid()}"
    url = await recreate_database(base, name)
    await upgrade_to_head(url)
    yield url
    if not os.environ.get("KEEP_TEST_DATABASE"):
        await drop_database(base, name)


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=20)
    yield database
    await database.dispose()


class Gateway:
    def __init__(self, client: httpx.AsyncClient):
        self.client = client

    async def token(self, client_id: str, secret: str, scope: str | None = None) -> str:
        data = {"grant_type": "client_credentials"}
        if scope is not None:
            data["scope"] = scope
        response = await self.client.post("/oauth/token", data=data, auth=(client_id, secret))
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    async def post(
        self, token: str | None, query: str, variables: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def gql(self, token: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.post(token, query, variables)
        assert response.status_code == 200, response.text
        return response.json()

    async def partner_token(self, partner: SeededPartner, scope: str | None = None) -> str:
        return await self.token(partner.client_id, partner.client_secret, scope)


async def member_token(db: Database, member_id: int, client_id: str = "test-member-app") -> str:
    """A member's access token as the authorization-code grant mints it (scope `member`, `sub` the
    member's global ID), signed with the active key, for tests of what a member may do."""
    async with db.sessions() as session:
        key = await identity_keys.active_signing_key(session)
        claims = await member_tokens.member_token_claims(
            session, client_id=client_id, scope=MEMBER_SCOPE, member_id=member_id
        )
    assert key is not None, "the gateway fixture creates the signing key"
    return tokens.sign(claims, key)


@pytest.fixture(scope="session")
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    app = create_app(database_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield Gateway(client)


@pytest.fixture(scope="session")
async def admin_token(gateway: Gateway, db: Database) -> str:
    async with db.sessions() as session:
        creds = await identity.create_client(
            session, name="test admin", scopes=sorted(ADMIN_SCOPES | {"members:read"})
        )
        await session.commit()
    return await gateway.token(creds.client_id, creds.client_secret)


@pytest.fixture
async def partner_pair(db: Database, gateway: Gateway) -> tuple[SeededPartner, str, SeededPartner, str]:
    a = await make_partner(db)
    b = await make_partner(db)
    return a, await gateway.partner_token(a), b, await gateway.partner_token(b)
