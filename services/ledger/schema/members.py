"""Members as the ledger's clients see them: a member and their points, and enrolment.

The `Member` type lives with the ledger, not with `services/members`: most of what it shows is
points, and services depend one way (members may not import the ledger). Enrolment itself is the
members service's (`services.members.service.enroll_member`); its GraphQL face, `enrollMember`, is
engagement's (services/engagement/enrolment_schema.py), which records a referral in the same
transaction.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import strawberry

from services.ledger import service as ledger
from services.ledger.schema.tiers import MemberTier, member_tier
from services.ledger.schema.types import Balance, ExpiringPoints, Transaction
from services.members import service
from shared.access import Principal
from shared.graphql_types import After, Connection, First, GraphQLInfo, Node
from shared.ids import to_global_id
from shared.operations import PAGE_CODES, Access, field, partner_or_admin

# Who may read a member's points (services/ledger/queries.py `_require_visible`).
POINTS_READERS = Access(
    "partner credentials with the scope `members:read`, for members linked to the caller; coalition"
    " admins with the scope `admin:partners`; or the member's own token (scope `member`)",
    ("members:read", "admin:partners", "member"),
)


@strawberry.type(description="A coalition member: one number, one balance across every partner.")
class Member(Node):
    local_id: strawberry.Private[int]
    member_number: str = strawberry.field(
        description="The member's coalition number, as on their card: 12 digits, the last a Luhn check"
        " digit. It never changes and never passes to anyone else."
    )
    # Whom the members service found this member for (`MemberView.visible_to`): the ledger then
    # skips asking whether the member is linked to that caller, and a balance is one statement.
    visible_to: strawberry.Private[Principal | None] = None

    @classmethod
    def of(cls, view: service.MemberView) -> Member:
        return cls(
            id=strawberry.ID(to_global_id("Member", view.id)),
            local_id=view.id,
            member_number=view.member_number,
            visible_to=view.visible_to,
        )

    @field("The coalition-wide balance, across all partners.", access=POINTS_READERS)
    async def balance(self, info: GraphQLInfo) -> Balance:
        b = await ledger.balance(
            info.context.db, info.context.principal, self.local_id, visible_to=self.visible_to
        )
        return Balance(available=b.available, pending=b.pending, held=b.held)

    @field("The member's status tier (coalition-wide); null while they hold none.", access=POINTS_READERS)
    async def tier(self, info: GraphQLInfo) -> MemberTier | None:
        return await member_tier(info, self.local_id)

    @field(
        "Points that expire within the given duration, soonest first (at most 100).", access=POINTS_READERS
    )
    async def expiring_points(
        self,
        info: GraphQLInfo,
        within: Annotated[
            timedelta, strawberry.argument(description="How far ahead to look, from now (P30D).")
        ],
    ) -> list[ExpiringPoints]:
        found = await ledger.expiring_points(
            info.context.db, info.context.principal, self.local_id, within, visible_to=self.visible_to
        )
        return [ExpiringPoints(points=e.points, expires_at=e.expires_at) for e in found]

    @field(
        "The member's transactions, newest first. A partner sees only what happened at it.",
        access=POINTS_READERS,
        codes=PAGE_CODES,
    )
    async def transactions(
        self, info: GraphQLInfo, first: First = None, after: After = None
    ) -> Connection[Transaction]:
        page = await ledger.transactions(
            info.context.db,
            info.context.principal,
            self.local_id,
            first=first,
            after=after,
            visible_to=self.visible_to,
        )
        return Connection.of(page, Transaction.of)


@strawberry.type
class MembersQuery:
    @field(
        "A member linked to the calling partner (any member, for admins); null for an unknown number"
        " and for a member you cannot see alike (each counts towards RATE_LIMITED).",
        access=partner_or_admin("members:read", "admin:partners", "its linked members", "every member"),
    )
    async def member(
        self,
        info: GraphQLInfo,
        member_number: Annotated[
            str, strawberry.argument(description="The 12-digit coalition number, as on the card.")
        ],
    ) -> Member | None:
        found = await service.find_member(info.context.db, info.context.principal, member_number)
        return Member.of(found) if found else None
