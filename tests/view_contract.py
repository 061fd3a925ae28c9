"""Checks every published view gets: its columns as PostgreSQL reports them (the contract a test
pins), and whether the migrated view is the one its owner's module defines."""

from __future__ import annotations

from shared import sql
from shared.database import Database
from shared.views import View

COLUMNS = sql.Sql(
    "SELECT column_name, data_type FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND table_name = :name ORDER BY ordinal_position"
)
DEFINITION = sql.Sql("SELECT pg_get_viewdef(CAST(:name AS regclass), true)")


async def columns(db: Database, name: str) -> list[tuple[str, str]]:
    async with sql.connection(db) as conn:
        return [(r["column_name"], r["data_type"]) for r in await COLUMNS.fetch(conn, name=name)]


async def migrated_matches_owner(db: Database, view: View) -> bool:
    """The owner's text, created in a scratch schema that is rolled back, defines the same query
    as the migrated view (both printed by PostgreSQL under the same search path)."""
    async with sql.connection(db) as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            migrated = await DEFINITION.fetchval(conn, name=f"public.{view.name}")
            await conn.execute("CREATE SCHEMA view_contract_check")
            await conn.execute("SET LOCAL search_path = view_contract_check, public")
            await conn.execute(
                view.create.replace(f"VIEW {view.name}", f"VIEW view_contract_check.{view.name}")
            )
            owned = await DEFINITION.fetchval(conn, name=f"view_contract_check.{view.name}")
        finally:
            await transaction.rollback()
    return migrated == owned
