"""Real gateway processes for the propagation tests and `bench/propagation.py`."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.e2e.conftest import COALITION


@contextmanager
def serving(database_url: str, port: int, issuer: str) -> Iterator[str]:
    """`coalition serve` on `port` behind the public address `issuer`, until the block ends.
    The periodic re-read is an hour: only LISTEN/NOTIFY can propagate a change in time."""
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "OAUTH_ISSUER": issuer,
        "REVOCATION_CACHE_SECONDS": "3600",
    }
    process = subprocess.Popen(
        [COALITION, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {process.stdout.read() if process.stdout else ''}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become healthy in 30 s")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
