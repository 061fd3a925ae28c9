"""The embedded PostgreSQL a fresh machine uses when DATABASE_URL is unset.

Runs in every suite (DATABASE_URL set or not): the embedded path is what `make run` and
`make test` use on a new machine, so it must not rot while CI uses a local server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared.database import Database, resolve_database_url
from shared.embedded_postgres import SOCKET_PATH_MAX, embedded_database_url, stop_embedded
from shared.migrate import ensure_schema_current, upgrade_to_head
from shared.settings import PROJECT_ROOT, get_settings

pytestmark = pytest.mark.embedded

DATABASE = "coalition_embedded_test"
FIRST_CALL = """
import sys
from pathlib import Path
from shared.embedded_postgres import embedded_database_url
print(embedded_database_url(Path(sys.argv[1]), sys.argv[2]))
"""


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data dir too deep for a Unix socket inside it, under pytest's 0700 folders: both things
    a developer's checkout may have, and both the server's user (root runs it as another) must
    get past."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)  # set by the code under test; restored
    deep = tmp_path / ("d" * max(1, SOCKET_PATH_MAX - len(str(tmp_path))))
    yield deep / ".coalition"
    stop_embedded(deep / ".coalition")  # after a failure too: never leave a server behind


async def test_first_calls_race_to_one_server_which_migrates_stops_and_restarts(data_dir: Path):
    # Several processes (`make run`'s server, a CLI command, the tests) find no server at once.
    outcomes = await asyncio.gather(*(_first_call(data_dir) for _ in range(3)))
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    urls = {output.strip() for _, output in outcomes}
    assert len(urls) == 1

    # This process resolves it as the application does with DATABASE_URL unset: the same server.
    settings = dataclasses.replace(get_settings(), database_url=None, data_dir=data_dir)
    url = resolve_database_url(settings, database=DATABASE)
    assert {url} == urls
    socket_dir = Path(make_url(url).query["host"])  # type: ignore[arg-type]
    assert socket_dir != data_dir / "pgdata", "the socket path would have been too long"
    assert len(str(socket_dir / ".s.PGSQL.5432")) <= SOCKET_PATH_MAX

    await upgrade_to_head(url)
    await ensure_schema_current(url)
    assert await _tables(url) >= {"journal_entries", "postings", "lots", "wallets", "oauth_clients"}

    assert stop_embedded(data_dir) is True
    assert not await asyncio.to_thread(socket_dir.exists), "the short socket folder goes with the server"
    assert stop_embedded(data_dir) is False

    # The dev database survives a stop: the next command restarts it with its data.
    restarted = embedded_database_url(data_dir, DATABASE)
    await ensure_schema_current(restarted)
    assert stop_embedded(data_dir) is True


async def _first_call(data_dir: Path) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FIRST_CALL, str(data_dir), DATABASE,
        cwd=PROJECT_ROOT,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, output.decode()


async def _tables(url: str) -> set[str]:
    db = Database(url, pool_size=1)
    try:
        async with db.sessions() as session:
            rows = await session.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            return set(rows)
    finally:
        await db.dispose()
