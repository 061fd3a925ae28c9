"""SQL with :named parameters run straight on asyncpg, for the ledger's hot paths.

SQLAlchemy's per-statement work (session bookkeeping, compile-cache keys, a greenlet hop) costs
more than the statement itself on an earn, which is a handful of short statements; measured on
this machine it was most of the gateway's CPU per request (see docs/decisions.md). So the ledger
borrows a connection from the SQLAlchemy engine's pool and talks asyncpg on it, keeping the
familiar :name parameters by compiling them to $n once per statement.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.util import greenlet_spawn

from shared.database import Database

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

DbConnection = asyncpg.Connection  # the asyncpg connection, not the Relay `Connection` type


class Sql:
    """A statement compiled once: `:name` placeholders become asyncpg's `$n`."""

    def __init__(self, text: str):
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.text = _PARAM.sub(number, text)
        self.names = tuple(names)

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        missing = [n for n in self.names if n not in params]
        if missing:
            raise KeyError(f"missing SQL parameters: {', '.join(missing)}")
        return [params[n] for n in self.names]

    async def fetch(self, conn: DbConnection, **params: Any) -> list[asyncpg.Record]:
        return await conn.fetch(self.text, *self.args(params))

    async def fetchrow(self, conn: DbConnection, **params: Any) -> asyncpg.Record | None:
        return await conn.fetchrow(self.text, *self.args(params))

    async def fetchval(self, conn: DbConnection, **params: Any) -> Any:
        return await conn.fetchval(self.text, *self.args(params))

    async def execute(self, conn: DbConnection, **params: Any) -> str:
        return await conn.execute(self.text, *self.args(params))


# After one of these the connection's state is unknown (it broke, or asyncpg lost track of the
# protocol: a server that shuts down sends its FATAL error to idle connections before closing
# them), so it is not given back to the pool.
BROKEN = (asyncpg.InterfaceError, asyncpg.InternalClientError, asyncpg.PostgresConnectionError, OSError)


@asynccontextmanager
async def connection(db: Database) -> AsyncIterator[DbConnection]:
    """An asyncpg connection from the engine's pool (autocommit unless a transaction is begun).

    SQLAlchemy never sees what fails here, so it cannot tell a broken connection from a good
    one: a connection that raised one of BROKEN, or that the server closed, is invalidated
    (closed, and replaced in the pool) rather than handed to the next request. So is one still
    inside a transaction when its user is done: SQLAlchemy's reset on return rolls back only the
    transactions it began, and a task cancelled while asyncpg was sending BEGIN leaves the server
    in a transaction that asyncpg still counts as its own (every later `transaction()` on the
    connection would be a savepoint inside it, holding its locks)."""
    # Straight from the engine's pool, not through an engine Connection: on a one-statement read
    # the Connection's setup and teardown (and their greenlet hops) cost twice the statement's
    # own Python. The pool's hooks still run: the checkout hook replaces a connection the server
    # closed (`database._replace_if_closed`), and the return resets it. A hop into a greenlet is
    # needed only where the pool may do I/O: checkout (it may connect) and return (it may close).
    gate = db.admission()
    await _admit(db, gate)
    try:
        async with _pooled(db) as driver:
            yield driver
    finally:
        gate.release()


async def _admit(db: Database, gate: asyncio.Semaphore) -> None:
    """A turn in the process's first-come, first-served queue for a connection (see
    `Database.admission`), waited for at most DB_POOL_TIMEOUT_SECONDS, as the pool would."""
    if not gate.locked():
        await gate.acquire()  # a free slot: taken at once, no timer to arm
        return
    try:
        async with asyncio.timeout(db.pool_timeout):
            await gate.acquire()
    except TimeoutError as exc:
        raise PoolTimeout(
            f"no database connection free within {db.pool_timeout:g} s ({db.capacity} in use)"
        ) from exc


@asynccontextmanager
async def _pooled(db: Database) -> AsyncIterator[DbConnection]:
    pool = db.engine.sync_engine.pool
    fairy = await greenlet_spawn(pool.connect)
    driver: DbConnection = fairy.driver_connection  # type: ignore[assignment]
    try:
        yield driver
    except BROKEN:
        driver.terminate()  # at once: a polite close would wait on a server that may not answer
        await greenlet_spawn(fairy.invalidate)
        raise
    except BaseException:
        if driver.is_closed():
            await greenlet_spawn(fairy.invalidate)
        raise
    finally:
        if fairy.is_valid and not driver.is_closed() and _mid_transaction(driver):
            driver.terminate()  # the server rolls the transaction back as the connection closes
            await greenlet_spawn(fairy.invalidate)
        await greenlet_spawn(fairy.close)


def _mid_transaction(driver: DbConnection) -> bool:
    """In a transaction by the server's last word, or by asyncpg's own bookkeeping (a BEGIN whose
    answer a cancel cut off leaves the latter set, whatever the server did)."""
    return driver.is_in_transaction() or getattr(driver, "_top_xact", None) is not None


@asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[DbConnection]:
    async with connection(db) as conn, conn.transaction():
        yield conn
