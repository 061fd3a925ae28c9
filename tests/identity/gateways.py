"""Real gateway processes for the propagation tests and `bench/propagation.py`."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.e2e.conftest import COALITION


@contextmanager
def serving(database_url: str, port: int, issuer: str, **env_extra: str) -> Iterator[str]:
    """`coalition serve` on `port` behind the public address `issuer`, until the block ends.
    The periodic re-read is an hour: only LISTEN/NOTIFY can propagate a change in time.
    `env_extra`: more settings for the server (SMTP_URL=…)."""
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "OAUTH_ISSUER": issuer,
        "REVOCATION_CACHE_SECONDS": "3600",
        **env_extra,
    }
    # A file, not a pipe: nobody reads the pipe while the server runs, and an access-log line per
    # request would fill it and block the server.
    with tempfile.NamedTemporaryFile(prefix="coalition-gateway-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [COALITION, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {Path(log.name).read_text(errors='replace')}")
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
            process.wait()
        Path(log.name).unlink(missing_ok=True)
