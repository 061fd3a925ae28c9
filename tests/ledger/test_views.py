"""The ledger's read contract: the views settlement reads instead of the ledger's tables. A change
to their columns fails here, so it is made on purpose (and told to their readers)."""

from __future__ import annotations

from services.ledger.views import (
    LEDGER_ENTRIES_RECORDED,
    LEDGER_MEMBER_ENTRIES,
    LEDGER_MOVEMENTS,
    LEDGER_OPEN_LOTS,
    LEDGER_WALLETS,
    VIEWS,
)
from shared import sql
from tests.view_contract import columns, migrated_matches_owner

TZ = "timestamp with time zone"


async def test_ledger_movements_columns(db):
    assert await columns(db, LEDGER_MOVEMENTS.name) == [
        ("entry_id", "bigint"),
        ("kind", "text"),
        ("points", "bigint"),
        ("issuing_partner_id", "bigint"),
        ("counterparty_partner_id", "bigint"),
        ("occurred_at", TZ),
        ("recorded_at", TZ),
        ("redeem_price", "numeric"),
    ]


async def test_ledger_entries_recorded_columns(db):
    assert await columns(db, LEDGER_ENTRIES_RECORDED.name) == [
        ("id", "bigint"),
        ("kind", "text"),
        ("partner_id", "bigint"),
        ("points", "bigint"),
        ("order_id", "text"),
        ("occurred_at", TZ),
        ("recorded_at", TZ),
        ("coalition_points", "bigint"),
    ]


async def test_ledger_open_lots_columns(db):
    assert await columns(db, LEDGER_OPEN_LOTS.name) == [
        ("lot_id", "bigint"),
        ("member_id", "bigint"),
        ("issuing_partner_id", "bigint"),
        ("remaining", "bigint"),
        ("available_at", TZ),
        ("expires_at", TZ),
    ]


async def test_ledger_member_entries_columns(db):
    assert await columns(db, LEDGER_MEMBER_ENTRIES.name) == [
        ("entry_id", "bigint"),
        ("member_id", "bigint"),
        ("partner_id", "bigint"),
        ("kind", "text"),
        ("points", "bigint"),
        ("occurred_at", TZ),
    ]


async def test_ledger_wallets_columns(db):
    assert await columns(db, LEDGER_WALLETS.name) == [("member_id", "bigint"), ("debt", "bigint")]


async def test_the_migrated_views_are_the_ones_the_ledger_defines(db):
    """views.py and the migrations cannot drift apart: a changed view needs a new migration."""
    for view in VIEWS:
        assert await migrated_matches_owner(db, view), f"{view.name} changed without a migration"


async def test_reading_movements_without_their_price_or_entry_reads_only_the_movements(db):
    """The view's joins cost nothing to a reader that does not use what they bring: PostgreSQL
    removes a LEFT JOIN on a unique key whose columns are not read (redemptions' entry ids are
    unique for that reason)."""
    async with sql.connection(db) as conn:
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN SELECT issuing_partner_id, SUM(points) FROM ledger_movements"
                " WHERE kind = 'EXPIRY' GROUP BY 1"
            )
        )
        priced = "\n".join(
            r[0] for r in await conn.fetch("EXPLAIN SELECT redeem_price FROM ledger_movements")
        )
    assert "lot_consumptions" in plan
    assert "journal_entries" not in plan and "redemptions" not in plan, plan
    assert "redemptions" in priced  # and a reader that wants the price gets it
