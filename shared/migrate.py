"""Schema migrations (Alembic, infra/migrations): upgrade, and refuse to run on a stale schema."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from shared.settings import PROJECT_ROOT

MIGRATIONS = PROJECT_ROOT / "infra" / "migrations"


class SchemaBehind(RuntimeError):
    """The database is not at the revision this code was written for."""


def alembic_config() -> Config:
    config = Config(str(PROJECT_ROOT / "infra" / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations in infra/migrations/versions"
    return head


async def current_revision(url: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


async def schema_status(url: str) -> tuple[str | None, str]:
    return await current_revision(url), head_revision()


async def upgrade_to_head(url: str) -> None:
    engine = create_async_engine(url)
    config = alembic_config()
    try:
        async with engine.begin() as connection:

            def run(sync_connection) -> None:  # type: ignore[no-untyped-def]
                config.attributes["connection"] = sync_connection
                command.upgrade(config, "head")

            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def ensure_schema_current(url: str) -> None:
    current, head = await schema_status(url)
    if current != head:
        raise SchemaBehind(
            f"the database schema is at {current or 'nothing (empty database)'} but this code needs "
            f"{head}: run `coalition db upgrade` (or `make run`, which upgrades for you)"
        )
