"""Tier tests share the coalition's one set of tiers: each starts and ends with none."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.engagement import tiers
from services.members import tiers as member_tiers
from shared import sql
from shared.database import Database
from tests.factories import ADMIN


async def clear_tiers(db: Database) -> None:
    async with sql.transaction(db) as conn:
        await conn.execute("DELETE FROM member_tiers")
        await conn.execute("DELETE FROM tiers")
        await member_tiers.notify_changed(db, conn)


@pytest.fixture
async def no_tiers(db: Database) -> AsyncIterator[None]:
    await clear_tiers(db)
    yield
    await clear_tiers(db)


async def make_tier(
    db: Database, name: str, points: int, multiplier: str = "1", benefits=()
) -> member_tiers.Tier:
    return await tiers.create_tier(db, ADMIN, tiers.TierTerms(name, points, multiplier, tuple(benefits)))


async def tier_events(db: Database, member_id: int) -> list[dict]:
    async with sql.connection(db) as conn:
        rows = await conn.fetch(
            "SELECT data FROM outbox_events WHERE type = 'tier.changed' AND member_id = $1 ORDER BY id",
            member_id,
        )
    import json

    return [json.loads(r["data"]) if isinstance(r["data"], str) else r["data"] for r in rows]


async def held(db: Database, member_id: int) -> member_tiers.MemberTier | None:
    async with sql.connection(db) as conn:
        return (await member_tiers.member_tiers(conn, [member_id])).get(member_id)
