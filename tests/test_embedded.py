"""The embedded PostgreSQL a fresh machine uses when DATABASE_URL is unset."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.database import Database
from shared.embedded_postgres import embedded_database_url, stop_embedded
from shared.migrate import ensure_schema_current, upgrade_to_head


@pytest.mark.embedded
async def test_embedded_server_starts_migrates_and_is_reused():
    # A short path: the server's Unix socket lives in the data dir and socket paths are limited.
    with tempfile.TemporaryDirectory(prefix="coal-", dir="/tmp") as tmp:
        data_dir = Path(tmp) / ".coalition"
        url = embedded_database_url(data_dir, "coalition_embedded_test")
        try:
            assert "host=" in url and (data_dir / "pgdata" / "PG_VERSION").exists()
            await upgrade_to_head(url)
            await ensure_schema_current(url)
            # A second call (another CLI process, say) finds the running server: same URL.
            assert embedded_database_url(data_dir, "coalition_embedded_test") == url
            db = Database(url, pool_size=1)
            try:
                async with db.sessions() as session:
                    tables = set(
                        await session.scalars(
                            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                        )
                    )
            finally:
                await db.dispose()
            assert {"journal_entries", "postings", "lots", "wallets", "oauth_clients"} <= tables
        finally:
            assert stop_embedded(data_dir) is True
        assert stop_embedded(data_dir) is False
