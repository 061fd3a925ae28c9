"""The connection to PostgreSQL, the system of record.

`DATABASE_URL` names the server; with none, an embedded PostgreSQL under the data dir is
started, so a fresh machine needs nothing but Python.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.cache import TimedCache
from shared.settings import Settings, get_settings

APP_DATABASE = "coalition"


def normalize_url(url: str) -> str:
    """Accept the usual `postgresql://` form as well as SQLAlchemy's driver-qualified one."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise SystemExit(f"DATABASE_URL must be a postgresql:// URL, got {url!r}")


def resolve_database_url(settings: Settings | None = None, database: str = APP_DATABASE) -> str:
    """The SQLAlchemy URL to use; starts the embedded server when DATABASE_URL is unset."""
    settings = settings or get_settings()
    if settings.database_url:
        return normalize_url(settings.database_url)
    from shared.embedded_postgres import embedded_database_url

    return embedded_database_url(settings.data_dir, database)


@asynccontextmanager
async def standalone_database(pool_size: int = 2) -> AsyncIterator[Database]:
    """A Database for one command-line invocation, disposed when it is done."""
    db = Database(resolve_database_url(), pool_size=pool_size)
    try:
        yield db
    finally:
        await db.dispose()


@asynccontextmanager
async def standalone_session() -> AsyncIterator[AsyncSession]:
    """One session for one command-line invocation; the caller commits."""
    async with standalone_database(pool_size=1) as db, db.sessions() as session:
        yield session


class Database:
    """An engine and its session factory; one per process."""

    def __init__(self, url: str, *, pool_size: int | None = None):
        size = pool_size if pool_size is not None else get_settings().db_pool_size
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=size,
            max_overflow=size // 2,
            pool_recycle=3600,
            connect_args={"server_settings": {"application_name": "coalition"}},
        )
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        # Rarely-changing rows read on hot paths (a partner's earn terms), per process and per
        # database, so tests and benches holding two databases never mix them.
        self.cache = TimedCache()

    async def dispose(self) -> None:
        await self.engine.dispose()


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
