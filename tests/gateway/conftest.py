"""The real server for the gateway tests that are about HTTP itself (framing, body limits, the
GraphQL-over-HTTP audit): the same `coalition serve` fixture as the end-to-end tests, and tokens
it issued (a token names its issuer, and the server's issuer is its own base URL)."""

from __future__ import annotations

import httpx
import pytest

from services.identity import service as identity
from shared.access import ADMIN_SCOPES
from shared.database import Database
from tests.e2e.conftest import server

__all__ = ["live_admin_token", "live_token", "server"]


async def live_token(server: str, client_id: str, secret: str, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.post("/oauth/token", data=data, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture(scope="session")
async def live_admin_token(server: str, db: Database) -> str:
    async with db.sessions() as session:
        creds = await identity.create_client(session, name="live admin", scopes=sorted(ADMIN_SCOPES))
        await session.commit()
    return await live_token(server, creds.client_id, creds.client_secret)
