"""A member's tier as the member (Me.tier) and their partners (Member.tier) read it: the tier
held (members' state), the next one and the qualifying points still missing to it (the ledger's
purchases). Read only when a client asks for the field: a balance read stays one statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.ledger.purchases import qualifying_points
from services.members import tiers as member_tiers
from services.members.tiers import Tier
from shared import clock, sql
from shared.database import Database


@dataclass(frozen=True)
class MemberTierView:
    tier: Tier
    next_tier: Tier | None
    points_to_next: int | None
    qualifying_points: int
    qualifies_until: datetime


async def member_tier_view(db: Database, member_id: int) -> MemberTierView | None:
    """The member's tier, the next one and what is missing to it (None: no tier yet and no tier
    at 0). Three statements; only when a client asks for it."""
    async with sql.connection(db) as conn:
        tier_set = await member_tiers.cached_tiers(db, conn)
        if not tier_set:
            return None
        held = (await member_tiers.member_tiers(conn, [member_id])).get(member_id)
        now = clock.now()
        points = (await qualifying_points(conn, [member_id], member_tiers.window_start(now)))[member_id]
    tier = tier_set.by_id(held.tier_id) if held else tier_set.reached(0)
    if tier is None:
        return None
    nxt = tier_set.above(tier)
    return MemberTierView(
        tier=tier,
        next_tier=nxt,
        points_to_next=max(nxt.qualifying_points - points, 0) if nxt else None,
        qualifying_points=points,
        qualifies_until=held.qualifies_until if held else member_tiers.anniversary(now),
    )
