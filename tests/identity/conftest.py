"""Identity's own small Starlette app (its routes only, state set by hand) over the migrated test
database, and helpers to make clients, ask for tokens and read them."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from starlette.applications import Starlette

from services.identity import http as identity_http
from services.identity import service as identity
from services.identity.verifier import TokenVerifier
from shared import clock
from shared.access import ADMIN_SCOPES
from shared.database import Database
from tests.factories import SeededPartner, make_partner

BASE_URL = "http://identity.test"


def jwt_part(token: str, index: int) -> dict[str, Any]:
    """The decoded header (0) or payload (1) of a compact JWT, without verifying it."""
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """The application clock frozen at `moment` for the duration of the block."""
    clock.set_clock(lambda: moment)
    try:
        yield
    finally:
        clock.set_clock(None)


@contextmanager
def count_statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement `db` runs inside the block."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


class Identity:
    """The identity app over HTTP, and the verifier the app itself uses."""

    def __init__(self, http: httpx.AsyncClient, app: Starlette, db: Database):
        self.http = http
        self.app = app
        self.db = db

    @property
    def verifier(self) -> TokenVerifier:
        return self.app.state.verifier

    async def token_response(
        self, client_id: str, secret: str, scope: str | None = None, *, form_auth: bool = False
    ) -> httpx.Response:
        data = {"grant_type": "client_credentials"}
        if scope is not None:
            data["scope"] = scope
        if form_auth:
            data |= {"client_id": client_id, "client_secret": secret}
            return await self.http.post("/oauth/token", data=data)
        return await self.http.post("/oauth/token", data=data, auth=(client_id, secret))

    async def token(self, client_id: str, secret: str, scope: str | None = None) -> str:
        response = await self.token_response(client_id, secret, scope)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    async def introspect(self, token: str, auth: tuple[str, str]) -> httpx.Response:
        return await self.http.post("/oauth/introspect", data={"token": token}, auth=auth)

    async def revoke(self, token: str, auth: tuple[str, str]) -> httpx.Response:
        return await self.http.post("/oauth/revoke", data={"token": token}, auth=auth)


@pytest.fixture
async def identity_app(db: Database) -> AsyncIterator[Identity]:
    async with db.sessions() as session:
        await identity.ensure_signing_key(session)
        await session.commit()
    app = Starlette(routes=identity_http.routes())
    app.state.db = db
    # A long revocation cache: anything this process revokes must apply without a re-read.
    app.state.verifier = TokenVerifier(db, revocation_cache_seconds=3600, key_reload_interval=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield Identity(http, app, db)


@pytest.fixture
async def partner(db: Database) -> SeededPartner:
    return await make_partner(db)


@pytest.fixture
async def admin(db: Database) -> identity.ClientCredentials:
    async with db.sessions() as session:
        creds = await identity.create_client(
            session, name="identity test admin", scopes=sorted(ADMIN_SCOPES | {"members:read"})
        )
        await session.commit()
    return creds


def auth(creds: SeededPartner | identity.ClientCredentials) -> tuple[str, str]:
    """HTTP Basic credentials of a client."""
    return creds.client_id, creds.client_secret


def ago(seconds: float) -> datetime:
    return clock.now() - timedelta(seconds=seconds)
