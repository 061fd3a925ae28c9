"""One `coalition serve` for a bench: on a free port, on the bench's database, answering /healthz
before the bench starts, stopped whatever happens."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def served(database_url: str, workers: int = 1) -> AsyncIterator[str]:
    """Yields the server's base URL once it answers /healthz (at most 30 s)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": database_url, "OAUTH_ISSUER": base}
    coalition = str(Path(sys.executable).parent / "coalition")
    server = subprocess.Popen(
        [coalition, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def partner_token(base: str, client_id: str, client_secret: str) -> str:
    """A client-credentials access token from the served gateway."""
    answer = httpx.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, client_secret)
    )
    return str(answer.json()["access_token"])
