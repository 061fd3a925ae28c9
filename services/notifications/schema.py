"""Notifications' GraphQL face: `membersToReengage`, the list a re-engagement campaign targets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import strawberry

from services.notifications import reengagement
from shared.error_codes import UserErrorCode
from shared.graphql_types import After, Connection, First, GraphQLInfo, Points
from shared.operations import PAGE_CODES, field, partner_or_admin


@strawberry.type(description="A member a re-engagement campaign would target.")
class MemberToReengage:
    member_number: str = strawberry.field(description="The member's 12-digit coalition number.")
    email: str | None = strawberry.field(
        description="The member's email: for admins only (null for partners, and when none was given)."
    )
    partner_customer_ref: str | None = strawberry.field(
        description="For a partner: its own customer ref for the member (null for admins, and for a"
        " member linked by presenting the card)."
    )
    available_points: Points = strawberry.field(
        description="Points the member can spend now (net of debt; short checkout holds not deducted)."
    )
    last_activity_at: datetime | None = strawberry.field(
        description="The member's last earn or redemption (for a partner: at the partner); null if none."
    )

    @classmethod
    def of(cls, found: reengagement.MemberToReengage) -> MemberToReengage:
        return cls(
            member_number=found.member_number,
            email=found.email,
            partner_customer_ref=found.partner_customer_ref,
            available_points=Points(found.available_points),
            last_activity_at=found.last_activity_at,
        )


@strawberry.type
class NotificationsQuery:
    @field(
        "Members with no earn or redemption for `inactiveFor` and at least `minPoints` available, by"
        " member: the list a re-engagement campaign targets (the expiring-points mail is the built-in"
        " one). A partner sees only its linked members, inactivity measured at the partner.",
        access=partner_or_admin(
            "members:read", "admin:partners", "its linked members", "every member, with their email"
        ),
        codes=(*PAGE_CODES, UserErrorCode.INVALID, UserErrorCode.INVALID_AMOUNT),
    )
    async def members_to_reengage(
        self,
        info: GraphQLInfo,
        inactive_for: Annotated[
            timedelta, strawberry.argument(description="How long without activity (e.g. P90D); positive.")
        ],
        min_points: Annotated[
            Points | None, strawberry.argument(description="Least available points (default 0).")
        ] = None,
        first: First = None,
        after: After = None,
    ) -> Connection[MemberToReengage]:
        page = await reengagement.members_to_reengage(
            info.context.db,
            info.context.principal,
            inactive_for=inactive_for,
            min_points=min_points,
            first=first,
            after=after,
        )
        return Connection.of(page, MemberToReengage.of)
