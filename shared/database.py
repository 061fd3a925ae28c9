"""The connection to PostgreSQL, the system of record.

`DATABASE_URL` names the server; with none, an embedded PostgreSQL under the data dir is
started, so a fresh machine needs nothing but Python.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.cache import TimedCache
from shared.settings import Settings, get_settings

APP_DATABASE = "coalition"
COMMAND_TIMEOUT_MARGIN = 2.0  # seconds past statement_timeout before the client stops waiting


def normalize_url(url: str) -> str:
    """Accept the usual `postgresql://` form as well as SQLAlchemy's driver-qualified one."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise SystemExit(f"DATABASE_URL must be a postgresql:// URL, got {url!r}")


def libpq_url(url: str) -> str:
    """The URL as libpq (psql, pg_dump) reads it: `postgresql://`, no driver, and a Unix socket
    (the embedded server's) as a `host=/path` query parameter, which libpq takes for a socket
    directory. SQLAlchemy's rendering will not do: it writes a space in the path as `+` and an
    empty host before a port (`@:5433`), neither of which libpq reads back."""
    parsed = make_url(normalize_url(url))
    query = {k: v if isinstance(v, str) else v[0] for k, v in parsed.query.items()}
    if "ssl" in query and "sslmode" not in query:  # asyncpg's name for libpq's sslmode
        query["sslmode"] = query.pop("ssl")
    socket = query.pop("host", None)
    authority = ""
    if parsed.username:
        authority = quote(parsed.username, safe="")
        if parsed.password:
            authority += ":" + quote(str(parsed.password), safe="")
        authority += "@"
    if socket is None and parsed.host:
        host = f"[{parsed.host}]" if ":" in parsed.host else quote(parsed.host, safe="")
        authority += host + (f":{parsed.port}" if parsed.port else "")
    elif socket is not None:
        query = {"host": socket, **({"port": str(parsed.port)} if parsed.port else {}), **query}
    params = "&".join(f"{quote(k, safe='')}={quote(v, safe='/')}" for k, v in query.items())
    path = quote(parsed.database or "", safe="")
    return f"postgresql://{authority}/{path}" + (f"?{params}" if params else "")


def resolve_database_url(settings: Settings | None = None, database: str = APP_DATABASE) -> str:
    """The SQLAlchemy URL to use; starts the embedded server when DATABASE_URL is unset."""
    settings = settings or get_settings()
    if settings.database_url:
        return normalize_url(settings.database_url)
    from shared.embedded_postgres import embedded_database_url

    return embedded_database_url(settings.data_dir, database)


@asynccontextmanager
async def standalone_database(
    pool_size: int = 2, *, statement_timeout: float | None = None
) -> AsyncIterator[Database]:
    """A Database for one command-line invocation, disposed when it is done. An operator's command
    (audit, settle) scans whole periods or the whole ledger while someone watches it: its
    statements get DB_COMMAND_STATEMENT_TIMEOUT_SECONDS unless `statement_timeout` says otherwise
    (the worker, a daemon, passes the gateway's)."""
    if statement_timeout is None:
        statement_timeout = get_settings().db_command_statement_timeout_seconds
    db = Database(resolve_database_url(), pool_size=pool_size, statement_timeout=statement_timeout)
    try:
        yield db
    finally:
        await db.dispose()


@asynccontextmanager
async def standalone_session() -> AsyncIterator[AsyncSession]:
    """One session for one command-line invocation; the caller commits."""
    async with standalone_database(pool_size=1) as db, db.sessions() as session:
        yield session


def _milliseconds(seconds: float) -> str:
    return str(round(seconds * 1000))


class Database:
    """An engine and its session factory; one per process.

    Every connection is bounded (docs/decisions.md, "Timeouts"): a statement runs at most
    `statement_timeout` seconds (lock waits included) and a transaction left idle is ended by the
    server, so a runaway query or a leaked transaction cannot hold a connection, or the locks it
    took, forever; a checkout waits at most DB_POOL_TIMEOUT_SECONDS for a free connection and a
    connect at most DB_CONNECT_TIMEOUT_SECONDS. A pooled connection the server closed (a restart,
    a failover, an idle-in-transaction kill) is replaced when it is checked out, so the process
    serves again as soon as the database is back, without a restart. A statement whose client is
    gone (a gateway killed, or a request cut at the end of the shutdown grace) is aborted by the
    server within DB_CLIENT_CHECK_INTERVAL_SECONDS instead of running on, holding its locks, and
    maybe committing what nobody will be told about. The client stops waiting
    COMMAND_TIMEOUT_MARGIN after the statement timeout (asyncpg's `command_timeout`), for a server
    that cannot answer at all. A statement that must run longer (SET LOCAL statement_timeout)
    needs a Database made with a `statement_timeout` that long.
    """

    def __init__(self, url: str, *, pool_size: int | None = None, statement_timeout: float | None = None):
        settings = get_settings()
        size = pool_size if pool_size is not None else settings.db_pool_size
        if statement_timeout is None:
            statement_timeout = settings.db_statement_timeout_seconds
        self.url = url
        self.statement_timeout = statement_timeout
        self.pool_timeout = settings.db_pool_timeout_seconds
        self.capacity = size + settings.db_pool_overflow
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=size,
            # No overflow by default: an overflow connection is closed as soon as the pool has room
            # again, so a load just above the pool size opened and closed one per burst (a new
            # backend, prepared statements and plans each time): at 32 connections on a pool of 20
            # the balance read ran at 905 req/s, p99 146 ms with 10 overflow, 1,277 - 1,331 req/s,
            # p99 66 - 71 ms with none (bench/read.py). A checkout waits for a connection instead,
            # at most DB_POOL_TIMEOUT_SECONDS.
            max_overflow=settings.db_pool_overflow,
            pool_recycle=3600,
            pool_timeout=settings.db_pool_timeout_seconds,
            connect_args={
                "timeout": settings.db_connect_timeout_seconds,
                # The client's own bound, for a server that stopped answering (frozen, or the
                # network gone): it would never send the statement_timeout error.
                "command_timeout": statement_timeout + COMMAND_TIMEOUT_MARGIN if statement_timeout else None,
                "server_settings": {
                    "application_name": "coalition",
                    "statement_timeout": _milliseconds(statement_timeout),
                    "client_connection_check_interval": _milliseconds(
                        settings.db_client_check_interval_seconds
                    ),
                    "idle_in_transaction_session_timeout": _milliseconds(
                        settings.db_idle_in_transaction_timeout_seconds
                    ),
                },
            },
        )
        event.listen(self.engine.sync_engine, "checkout", _replace_if_closed)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        # Rarely-changing rows read on hot paths (a partner's earn terms), per process and per
        # database, so tests and benches holding two databases never mix them.
        self.cache = TimedCache()

    def admission(self) -> asyncio.Semaphore:
        """The first-come, first-served queue in front of the pool (`shared.sql.connection`).

        SQLAlchemy's async pool queue lets a newcomer take a connection that was just returned
        ahead of the requests already waiting for one (its get tries `get_nowait` first, and a
        waiter woken too late queues again at the back), so under a load above the pool size some
        requests waited several turns: at 32 connections on a pool of 20, the balance read's p99
        was three times its p50. asyncio's Semaphore hands a released slot to the longest
        waiter, so admission in arrival order bounds every wait by one turn of the queue.
        One per event loop (a semaphore belongs to the loop it first waited on)."""
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self.capacity)
        return gate

    async def dispose(self) -> None:
        await self.engine.dispose()


def _replace_if_closed(dbapi_connection: object, record: object, proxy: object) -> None:
    """Pool checkout hook: a connection whose socket the server closed is replaced by a new one
    (SQLAlchemy reconnects on DisconnectionError). It costs no round trip, unlike pool_pre_ping
    (BEGIN, a ping, ROLLBACK on every checkout, on a hot path that is one statement); the ledger's
    raw asyncpg work (shared/sql.py) bypasses SQLAlchemy's own disconnect detection, so without
    this its dead connections would go back to the pool and fail the next request too."""
    if dbapi_connection.driver_connection.is_closed():  # type: ignore[attr-defined]
        raise DisconnectionError("the server closed this pooled connection")


def _asyncpg_dsn(url: str) -> tuple[str, dict[str, str]]:
    """A plain DSN and connect kwargs for asyncpg from a SQLAlchemy URL (socket hosts included)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    kwargs: dict[str, str] = {}
    host = parsed.query.get("host")
    if host:
        kwargs["host"] = host if isinstance(host, str) else host[0]
    dsn = parsed.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    return dsn, kwargs


async def recreate_database(url: str, name: str) -> str:
    """Drop and create database `name` on the server of `url`; return its URL (tests, benches)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn, kwargs = _asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str, name: str) -> None:
    import asyncpg

    dsn, kwargs = _asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
