"""The Tier type and a member's tier (Me.tier, Member.tier): GraphQL faces of members' tier state
(services/members/tiers.py) and the tier view (services/ledger/tier_view.py). Engagement's
createTier and tiers reuse the Tier type."""

from __future__ import annotations

import decimal
from datetime import datetime

import strawberry

from services.ledger import tier_view
from services.members.tiers import Tier as TierState
from shared.graphql_types import GraphQLInfo, Node, Points
from shared.ids import to_global_id


@strawberry.type(description="A coalition-wide status tier; tiers are ordered by qualifyingPoints.")
class Tier(Node):
    name: str = strawberry.field(description="Its name, unique.")
    qualifying_points: Points = strawberry.field(
        description="Points earned over the rolling window (TIER_WINDOW_MONTHS, 12 by default) that reach it."
    )
    multiplier: decimal.Decimal = strawberry.field(
        description="Base points at every partner times this (1: none), issued by that partner."
    )
    benefits: list[str] = strawberry.field(description="What it gives beyond points, as shown to members.")

    @classmethod
    def of(cls, t: TierState) -> Tier:
        return cls(
            id=strawberry.ID(to_global_id("Tier", t.id)),
            name=t.name,
            qualifying_points=t.qualifying_points,
            multiplier=t.multiplier,
            benefits=list(t.benefits),
        )


@strawberry.type(description="The tier a member holds, and what the next one takes.")
class MemberTier:
    name: str = strawberry.field(description="The tier's name.")
    tier: Tier = strawberry.field(description="The tier itself.")
    next_tier: Tier | None = strawberry.field(description="The next tier up; null at the top.")
    points_to_next: Points | None = strawberry.field(
        description="Qualifying points still missing to nextTier; null at the top."
    )
    qualifying_points: Points = strawberry.field(
        description="Points earned at every partner over the rolling window, net of refunds."
    )
    qualifies_until: datetime = strawberry.field(
        description="The tier's anniversary: it is kept at least until then (a downgrade comes only"
        " after a grace period past it, TIER_GRACE_DAYS, 30 by default)."
    )


async def member_tier(info: GraphQLInfo, member_id: int) -> MemberTier | None:
    view = await tier_view.member_tier_view(info.context.db, member_id)
    if view is None:
        return None
    return MemberTier(
        name=view.tier.name,
        tier=Tier.of(view.tier),
        next_tier=Tier.of(view.next_tier) if view.next_tier else None,
        points_to_next=view.points_to_next,
        qualifying_points=view.qualifying_points,
        qualifies_until=view.qualifies_until,
    )
