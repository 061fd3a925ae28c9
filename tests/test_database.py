"""The bounds every connection gets (shared/database.py): a runaway statement, a transaction left
idle and a wait for a pooled connection all end with a clear error instead of hanging, and a
connection the server closed is replaced at the next checkout."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from services.gateway.availability import outage_of
from shared import sql
from shared.database import Database, standalone_database
from shared.settings import get_settings


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Environment overrides that Database() reads through get_settings(), undone afterwards."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


async def _show(db: Database, *names: str) -> list[str]:
    async with sql.connection(db) as conn:
        return [await conn.fetchval(f"SHOW {name}") for name in names]


async def test_every_connection_is_bounded_by_default(database_url: str, settings_env):
    settings_env.setenv("DATABASE_URL", database_url)
    names = ("statement_timeout", "idle_in_transaction_session_timeout", "client_connection_check_interval")
    db = Database(database_url, pool_size=1)
    try:
        assert await _show(db, *names) == ["30s", "1min", "1s"]
    finally:
        await db.dispose()
    async with standalone_database(pool_size=1) as command:  # an operator's audit or settlement
        assert await _show(command, "statement_timeout") == ["1h"]


async def test_a_statement_over_the_limit_fails_instead_of_hanging(database_url: str):
    db = Database(database_url, pool_size=1, statement_timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout") as raw:
            async with sql.connection(db) as conn:
                await conn.execute("SELECT pg_sleep(10)")
        with pytest.raises(sa_exc.DBAPIError, match="statement timeout") as orm:
            async with db.sessions() as session:
                await session.execute(text("SELECT pg_sleep(10)"))
        assert time.monotonic() - started < 3
        assert outage_of(raw.value).code == outage_of(orm.value).code == "TIMEOUT"
        async with sql.connection(db) as conn:  # the connection is still good
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await db.dispose()


async def test_an_idle_transaction_is_ended_and_its_connection_replaced(database_url: str, settings_env):
    """A transaction left open (a bug, a task cancelled at the wrong moment) loses its session, and
    so its locks, after the limit; the pool then hands out a new connection, not the dead one."""
    settings_env.setenv("DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", "0.3")
    db = Database(database_url, pool_size=1)  # one connection: the next checkout gets the same slot
    try:
        with pytest.raises(Exception) as ended:
            async with sql.connection(db) as conn:
                transaction = conn.transaction()
                await transaction.start()
                await conn.execute("SELECT 1")
                await asyncio.sleep(1.0)
                await conn.execute("SELECT 2")
        assert outage_of(ended.value).code == "UNAVAILABLE", repr(ended.value)
        async with sql.connection(db) as conn:
            assert await conn.fetchval("SELECT 3") == 3
    finally:
        await db.dispose()


async def test_waiting_for_a_pooled_connection_is_bounded(database_url: str, settings_env):
    settings_env.setenv("DB_POOL_TIMEOUT_SECONDS", "0.3")
    db = Database(database_url, pool_size=1)  # max_overflow 0: one connection in all
    try:
        async with sql.connection(db):
            started = time.monotonic()
            with pytest.raises(sa_exc.TimeoutError) as waited:
                async with sql.connection(db):
                    pass
            assert time.monotonic() - started < 2
        assert outage_of(waited.value).code == "UNAVAILABLE"
    finally:
        await db.dispose()


async def test_connections_go_to_waiters_in_arrival_order(database_url: str):
    """A connection given back goes to the request that has waited longest, never to one that
    arrived later: SQLAlchemy's own queue let newcomers barge in, which tripled the p99 of the
    balance read under load (Database.admission). 30 tasks hammer a pool of 2; every request
    takes a ticket as it asks, and the tickets must be served in order."""
    db = Database(database_url, pool_size=2)
    tickets = itertools.count()
    served: list[int] = []
    try:
        async with sql.connection(db), sql.connection(db):
            pass  # both connections open: no checkout below waits on a connect

        async def client() -> None:
            for _ in range(20):
                ticket = next(tickets)
                async with sql.connection(db) as conn:
                    served.append(ticket)
                    await conn.fetchval("SELECT 1")

        await asyncio.gather(*(client() for _ in range(30)))
        overtaken = sum(1 for before, after in itertools.pairwise(served) if after < before)
        assert len(served) == 600
        assert overtaken == 0, f"{overtaken} requests were served before one that asked earlier"
    finally:
        await db.dispose()


async def test_a_raw_connection_left_in_an_unknown_state_is_not_reused(database_url: str):
    """The ledger's asyncpg work bypasses SQLAlchemy, so shared/sql.py must discard a connection
    that failed at the protocol level; otherwise the next request inherits it."""
    db = Database(database_url, pool_size=1)
    try:
        with pytest.raises(asyncpg.InterfaceError, match="another operation is in progress"):
            async with sql.connection(db) as conn:
                first = await conn.fetchval("SELECT pg_backend_pid()")
                slow = asyncio.create_task(conn.fetchval("SELECT pg_sleep(0.3)"))
                await asyncio.sleep(0.05)
                try:
                    await conn.fetchval("SELECT 1")  # a second operation on a busy connection
                finally:
                    slow.add_done_callback(lambda task: task.exception())  # closed under it: expected
        async with sql.connection(db) as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") != first
    finally:
        await db.dispose()


async def test_a_task_cancelled_anywhere_in_a_transaction_leaves_no_transaction_in_the_pool(database_url):
    """Found by the fuzz test: GraphQL cancels sibling resolvers when one fails, and a cancel that
    lands while asyncpg sends BEGIN leaves the connection inside a transaction that asyncpg
    thinks it owns; given back to the pool, every later "transaction" on it became a savepoint of
    that one, holding its row locks until idle_in_transaction_session_timeout. Cancel tasks at
    every point of their transaction, then check each pooled connection is clean."""
    db = Database(database_url, pool_size=2)

    async def work(i: int) -> None:
        async with sql.transaction(db) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('cancel-drill'), $1)", i)
            await conn.fetchval("SELECT pg_sleep(0.001)")

    try:
        for round_ in range(60):
            tasks = [asyncio.create_task(work(round_ * 10 + i)) for i in range(4)]
            await asyncio.sleep(round_ % 6 * 0.0005)  # land the cancel at a different point each time
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for _ in range(2):  # both pooled connections (pool_size=2, no overflow checked out at once)
                async with sql.connection(db) as conn:
                    assert not conn.is_in_transaction(), (
                        f"round {round_}: a connection came back mid-transaction"
                    )
                    async with conn.transaction():
                        assert (
                            await conn.fetchval(
                                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                " AND pid = pg_backend_pid()"
                            )
                            == 0
                        )
    finally:
        await db.dispose()
