"""A running `coalition serve` holds exactly one LISTEN connection (`shared.listening`), whatever
number of services hear through it, and takes it up again when its backend is terminated."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from shared import sql
from shared.database import Database
from shared.listening import APPLICATION_NAME
from tests.e2e.conftest import start_gateway

BACKENDS = sql.Sql(
    "SELECT pid, application_name FROM pg_stat_activity"
    " WHERE datname = current_database() AND backend_type = 'client backend'"
)


async def backends(db: Database) -> dict[int, str]:
    async with sql.connection(db) as conn:
        return {row["pid"]: row["application_name"] for row in await BACKENDS.fetch(conn)}


async def gateways_backends(db: Database, before: dict[int, str]) -> Counter[str]:
    """Application names of the backends that appeared since `before` (the gateway's, and maybe
    a new pooled connection of this test's own, named `coalition` too)."""
    now = await backends(db)
    return Counter(name for pid, name in now.items() if pid not in before)


async def listening_pids(db: Database, before: dict[int, str]) -> list[int]:
    """The listening backends that appeared since `before`."""
    now = await backends(db)
    return [pid for pid, name in now.items() if name == APPLICATION_NAME and pid not in before]


async def test_a_gateway_holds_exactly_one_listening_backend(db: Database, database_url: str, tmp_path: Path):
    before = await backends(db)
    gateway = start_gateway(database_url, tmp_path / "gateway.log")
    try:
        started = await gateways_backends(db, before)
        # One listener for identity, members' links and erasures and the balance feed; every other
        # connection is the pool's (no unnamed or per-service listener is left).
        assert started[APPLICATION_NAME] == 1, started
        assert set(started) <= {APPLICATION_NAME, "coalition"}, started
        [listener_pid] = await listening_pids(db, before)

        async with sql.connection(db) as conn:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", listener_pid)
        deadline = time.monotonic() + 10
        while True:  # the gateway takes it up again: one new listening backend, not two
            mine = await listening_pids(db, before)
            if mine and listener_pid not in mine:
                break
            assert time.monotonic() < deadline, "the gateway did not listen again"
            await asyncio.sleep(0.05)
        assert len(mine) == 1, mine
    finally:
        gateway.stop()
