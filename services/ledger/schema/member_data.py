"""GraphQL for data protection: erasure (admins). A member's export of their own data is the
gateway's (`services/gateway/member_export.py`): it gathers every service's part of it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from services.ledger import erasure
from services.ledger.schema.members import Member
from services.members import service as members
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import GraphQLInfo, Points, UserError, user_errors
from shared.operations import INPUT, admin, mutation


@strawberry.input(description="The member to erase.")
class EraseMemberInput:
    member_number: str = strawberry.field(description="The member's 12-digit coalition number.")


@strawberry.type(description="The answer to eraseMember.")
class EraseMemberPayload:
    member: Member | None = strawberry.field(
        default=None, description="The erased member: only the number, kept as the books' opaque key."
    )
    erased_at: datetime | None = strawberry.field(
        default=None, description="When the member was erased (the first time, when erased again)."
    )
    forfeited_points: Points | None = strawberry.field(
        default=None,
        description="Points forfeited to their issuers' breakage by this erasure (0 when erased before).",
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why nothing was erased; empty on success."
    )


@strawberry.type
class ErasureMutation:
    @mutation(
        "Erase a member (audit-logged): email, password and every partner link with its customer ref"
        " are removed; remaining points (available and pending; live holds released first) are"
        " forfeited to their issuers' breakage as ERASURE entries, which settlement prices like"
        " expiry. The member number stays as an opaque key: it can no longer log in, be enrolled,"
        " linked or earn. Erasing an erased member again changes nothing.",
        access=admin("admin:partners"),
        codes=(UserErrorCode.REQUIRED, UserErrorCode.INVALID_MEMBER_NUMBER, UserErrorCode.MEMBER_NOT_FOUND),
    )
    async def erase_member(
        self, info: GraphQLInfo, input: Annotated[EraseMemberInput, INPUT]
    ) -> EraseMemberPayload:
        try:
            done = await erasure.erase_member(info.context.db, info.context.principal, input.member_number)
        except DomainError as exc:
            return EraseMemberPayload(user_errors=user_errors(exc.errors))
        return EraseMemberPayload(
            member=Member.of(members.MemberView(done.member_id, done.member_number)),
            erased_at=done.erased_at,
            forfeited_points=done.forfeited_points,
        )
