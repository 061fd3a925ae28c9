"""A client that goes away mid-request is the network's doing, not a bug: the gateway logs one line
and keeps serving, no traceback (uvicorn logs an unhandled one as "Exception in ASGI application")."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlparse

import httpx

from services.identity import service as identity
from shared.access import ADMIN_SCOPES
from shared.database import Database
from tests.e2e.conftest import start_gateway
from tests.gateway.conftest import live_token


async def test_a_client_gone_before_its_body_is_logged_in_one_line(database_url, db: Database, tmp_path):
    gateway = start_gateway(database_url, tmp_path / "gateway.log")
    try:
        async with db.sessions() as session:
            creds = await identity.create_client(
                session, name="disconnecting admin", scopes=sorted(ADMIN_SCOPES)
            )
            await session.commit()
        token = await live_token(gateway.base, creds.client_id, creds.client_secret)
        url = urlparse(gateway.base)
        for _ in range(3):  # a declared body of 1,000 bytes, 20 sent, then the client is gone
            with socket.create_connection((url.hostname, url.port), timeout=10) as raw:
                raw.sendall(
                    f"POST /graphql HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
                    "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode()
                    + b'{"query": "{ viewer '
                )
            await asyncio.sleep(0.2)
        answer = httpx.post(
            f"{gateway.base}/graphql",
            json={"query": "{ viewer { clientId } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.json()["data"]["viewer"]["clientId"] == creds.client_id
        deadline = time.monotonic() + 5
        while "client disconnected" not in gateway.output() and time.monotonic() < deadline:  # noqa: ASYNC110 (a log file, nothing to wait on)
            await asyncio.sleep(0.1)
        log = gateway.output()
        assert log.count("client disconnected before sending the whole request body") == 3, log[-2000:]
        assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]
    finally:
        gateway.stop()
