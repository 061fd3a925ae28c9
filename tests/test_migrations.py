"""Migrations and models cannot drift apart, and a stale schema is refused with advice."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

import services.gateway.tables  # noqa: F401  (every table on Base.metadata)
from shared.database import drop_database, recreate_database
from shared.migrate import COMPARE, SchemaBehind, ensure_schema_current, schema_status, upgrade_to_head
from shared.models import Base


async def test_migrated_database_matches_the_models(database_url):
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts=COMPARE), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == [], "models changed without a migration: run `make migration m='what changed'`"


async def test_an_empty_database_is_refused_with_the_command_to_run(database_url):
    url = await recreate_database(database_url, "coalition_stale_check")
    try:
        with pytest.raises(SchemaBehind, match="coalition db upgrade"):
            await ensure_schema_current(url)
    finally:
        await drop_database(database_url, "coalition_stale_check")


async def test_concurrent_upgrades_queue_instead_of_colliding(database_url):
    url = await recreate_database(database_url, "coalition_concurrent_upgrade")
    try:
        await asyncio.gather(upgrade_to_head(url), upgrade_to_head(url))
        current, head = await schema_status(url)
        assert current == head
        await ensure_schema_current(url)
    finally:
        await drop_database(database_url, "coalition_concurrent_upgrade")
