"""Schema migrations (Alembic, infra/migrations): upgrade, and refuse to run on a stale schema.

Alembic is configured here in code (infra/alembic.ini only serves `make migration`), and runs on
a connection this module opens, so the application, the CLI and the tests migrate exactly the
database they were given rather than one env.py would guess.
"""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.settings import PROJECT_ROOT

MIGRATIONS = PROJECT_ROOT / "infra" / "migrations"
# Any constant will do: it only has to be the same for every process upgrading one database.
UPGRADE_LOCK = 0x636F616C  # "coal"
# How models and database are compared, by autogenerate (env.py) and by tests/test_migrations.py.
COMPARE = {"compare_type": True, "compare_server_default": True}


class SchemaBehind(RuntimeError):
    """The database is not at the revision this code was written for; the message says what to do."""


def alembic_config() -> Config:
    config = Config(str(PROJECT_ROOT / "infra" / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations in infra/migrations/versions"
    return head


async def current_revision(url: str) -> str | None:
    """The revision stamped in the database, None for a database never migrated."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


async def schema_status(url: str) -> tuple[str | None, str]:
    """(the database's revision, the newest revision this code has)."""
    return await current_revision(url), head_revision()


async def upgrade_to_head(url: str) -> None:
    """Applies every pending migration in one transaction (PostgreSQL DDL is transactional).

    An advisory lock makes concurrent upgrades (two deploys, `make run` next to a test) queue:
    the second finds the schema at head and does nothing.
    """
    engine = create_async_engine(url, poolclass=NullPool)
    config = alembic_config()

    def upgrade(connection: Connection) -> None:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade)
    finally:
        await engine.dispose()


async def ensure_schema_current(url: str) -> None:
    """Raises SchemaBehind unless the database is exactly at this code's head revision."""
    current, head = await schema_status(url)
    if current == head:
        return
    if current is not None and not _known(current):
        raise SchemaBehind(
            f"database schema is at {current}, a revision this code does not know (migrated by newer "
            f"code?): run the code that migrated it, or a database of your own"
        )
    raise SchemaBehind(
        f"database schema is at {current or 'nothing (an empty database)'} but this code needs {head}: "
        "run `coalition db upgrade` (or `make run`, which upgrades for you)"
    )


async def autogenerate_revision(server_url: str, message: str, metadata: MetaData) -> str | None:
    """Writes a migration for whatever the models (`metadata`, with every service's tables on it:
    the caller imports them, shared knows no service) have that the migrations lack; the new
    file's path, or None when they already agree.

    Compared against a scratch database migrated to head on the same server, never the dev or
    production database, whose state may be anything.
    """
    from alembic.autogenerate import compare_metadata

    from shared.database import drop_database, recreate_database

    name = f"coalition_autogenerate_{os.getpid()}"
    scratch = await recreate_database(server_url, name)
    engine = create_async_engine(scratch, poolclass=NullPool)
    config = alembic_config()

    def generate(connection: Connection) -> str | None:
        context = MigrationContext.configure(connection, opts=COMPARE)
        if not compare_metadata(context, metadata):
            return None
        config.attributes["connection"] = connection
        script = command.revision(config, message=message, autogenerate=True)
        assert isinstance(script, Script)
        return script.path

    try:
        await upgrade_to_head(scratch)
        async with engine.connect() as connection:
            return await connection.run_sync(generate)
    finally:
        await engine.dispose()
        await drop_database(server_url, name)


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:  # "Can't locate revision identified by ..."
        return False
