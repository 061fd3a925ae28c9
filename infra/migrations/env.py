"""Alembic environment: every service's tables, on PostgreSQL through asyncpg.

shared/migrate.py hands over an open connection (`config.attributes["connection"]`), or a URL
(`config.attributes["database_url"]`); the `alembic` command line (`make migration`) gives
neither, and then the database is found as the application finds it: DATABASE_URL, else the
embedded server.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import services.gateway.tables  # noqa: F401  (registers every table on Base.metadata)
from shared.database import resolve_database_url
from shared.migrate import COMPARE
from shared.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.attributes.get("database_url") or resolve_database_url()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, **COMPARE)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    _run(connection)
else:
    asyncio.run(_run_async())
