"""Members as the ledger's clients see them: a member and their points, and enrolment.

The `Member` type lives with the ledger, not with `services/members`: most of what it shows is
points, and services depend one way (members may not import the ledger). Enrolment itself is the
members service's (`services.members.service.enroll_member`); this is only its GraphQL face.
"""

from __future__ import annotations

from datetime import timedelta

import strawberry

from services.ledger import service as ledger
from services.ledger.schema.types import Balance, ExpiringPoints, Transaction
from services.members import service
from shared.errors import DomainError
from shared.graphql_types import Connection, GraphQLInfo, Node, UserError, user_errors
from shared.ids import to_global_id


@strawberry.type
class Member(Node):
    local_id: strawberry.Private[int]
    member_number: str

    @classmethod
    def of(cls, view: service.MemberView) -> Member:
        return cls(
            id=strawberry.ID(to_global_id("Member", view.id)),
            local_id=view.id,
            member_number=view.member_number,
        )

    @strawberry.field(description="The coalition-wide balance, across all partners.")
    async def balance(self, info: GraphQLInfo) -> Balance:
        b = await ledger.balance(info.context.db, info.context.principal, self.local_id)
        return Balance(available=b.available, pending=b.pending, held=b.held)

    @strawberry.field(description="Points that expire within the given duration, soonest first.")
    async def expiring_points(self, info: GraphQLInfo, within: timedelta) -> list[ExpiringPoints]:
        found = await ledger.expiring_points(info.context.db, info.context.principal, self.local_id, within)
        return [ExpiringPoints(points=e.points, expires_at=e.expires_at) for e in found]

    @strawberry.field(description="Newest first. A partner sees only what happened at it.")
    async def transactions(
        self, info: GraphQLInfo, first: int | None = None, after: str | None = None
    ) -> Connection[Transaction]:
        page = await ledger.transactions(
            info.context.db, info.context.principal, self.local_id, first=first, after=after
        )
        return Connection.of(page, Transaction.of)


@strawberry.input
class EnrollMemberInput:
    partner_customer_ref: str = strawberry.field(description="Your own id for this customer.")
    email: str | None = None
    member_number: str | None = strawberry.field(
        default=None, description="Link an existing coalition member instead of creating one."
    )


@strawberry.type
class EnrollMemberPayload:
    member: Member | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MembersQuery:
    @strawberry.field(
        description="A member enrolled with the calling partner (any member, for admins); "
        "null for an unknown number and for a member you cannot see alike."
    )
    async def member(self, info: GraphQLInfo, member_number: str) -> Member | None:
        found = await service.find_member(info.context.db, info.context.principal, member_number)
        return Member.of(found) if found else None


@strawberry.type
class MembersMutation:
    @strawberry.mutation(description="Enrol a customer of the calling partner in the coalition.")
    async def enroll_member(self, info: GraphQLInfo, input: EnrollMemberInput) -> EnrollMemberPayload:
        try:
            view = await service.enroll_member(
                info.context.db,
                info.context.principal,
                partner_customer_ref=input.partner_customer_ref,
                email=input.email,
                member_number=input.member_number,
            )
        except DomainError as exc:
            return EnrollMemberPayload(user_errors=user_errors(exc.errors))
        return EnrollMemberPayload(member=Member.of(view))
