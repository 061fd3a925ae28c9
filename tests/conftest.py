"""Fixtures shared by every test: a fresh, migrated PostgreSQL database per test session.

The database comes from DATABASE_URL when it is set, else from the embedded server, exactly as
the application finds it. Tests build their data through the services' own functions.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from shared.database import Database, drop_database, recreate_database, resolve_database_url
from shared.migrate import upgrade_to_head


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    base = resolve_database_url()
    name = f"coalition_test_{os.getpid()}"
    url = await recreate_database(base, name)
    await upgrade_to_head(url)
    yield url
    if not os.environ.get("KEEP_TEST_DATABASE"):
        await drop_database(base, name)


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=40)
    yield database
    await database.dispose()
