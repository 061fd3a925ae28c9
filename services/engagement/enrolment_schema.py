"""GraphQL for enrolment: `enrollMember`, with an optional referral code.

It lives here rather than with the `Member` type (services/ledger/schema/members.py) because a
referral is recorded in the enrolment's own transaction, and engagement is the lowest service
that may both call the members service and own referrals (services/engagement/referrals.py).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from services.engagement import referrals
from services.ledger.schema.members import Member
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import GraphQLInfo, UserError, user_errors
from shared.operations import INPUT, mutation, partner


@strawberry.input(description="A customer of the calling partner to enrol (or link).")
class EnrollMemberInput:
    partner_customer_ref: str = strawberry.field(
        description="Your own id for this customer, 1 to 200 characters: one per member at your"
        " partner. Enrolling the same ref again returns the member it enrolled (a safe retry)."
    )
    email: str | None = strawberry.field(
        default=None, description="The customer's email, for the member's sign-up mail; stored normalized."
    )
    member_number: str | None = strawberry.field(
        default=None,
        description="Link an existing coalition member (12 digits with a check digit) instead of"
        " creating one; an unknown number is MEMBER_NOT_FOUND (and counts towards RATE_LIMITED).",
    )
    language: str | None = strawberry.field(
        default=None,
        description="The customer's language, a BCP 47 tag (en, fr, nl-BE…), for member mail: set on a"
        " new member, and on a linked one who has none yet (the member's own choice stays).",
    )
    birth_date: date | None = strawberry.field(
        default=None,
        description="The customer's birth date (YYYY-MM-DD, 1900 to today), for birthday bonuses: set on"
        " a new member, and on a linked one who has none yet (INVALID outside that range).",
    )
    referral_code: str | None = strawberry.field(
        default=None,
        description="The referral code of the member who referred this customer (Me.referralCode; case,"
        " spaces and hyphens do not matter). Recorded for a new member only (not for a member linked by"
        " memberNumber, nor for an email another member already has); the referrer earns a bonus once"
        " the new member's first purchase is available. Unknown: REFERRAL_CODE_INVALID, and nobody is"
        " enrolled.",
    )


@strawberry.type(description="The answer to enrollMember.")
class EnrollMemberPayload:
    member: Member | None = strawberry.field(
        default=None, description="The member, new or linked; null on userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why nobody was enrolled; empty on success."
    )


@strawberry.type
class EnrolmentMutation:
    @mutation(
        "Enrol a customer of the calling partner in the coalition (a new member with a new number), or"
        " link an existing member to it (memberNumber). Linked, the partner may see and spend the"
        " member's points. With referralCode, a new member is recorded as referred by the code's owner"
        " (in the same transaction: a refused code enrols nobody).",
        access=partner("members:write"),
        codes=(
            UserErrorCode.REQUIRED,
            UserErrorCode.TOO_LONG,
            UserErrorCode.INVALID,
            UserErrorCode.INVALID_EMAIL,
            UserErrorCode.INVALID_MEMBER_NUMBER,
            UserErrorCode.MEMBER_NOT_FOUND,
            UserErrorCode.REF_ALREADY_ENROLLED,
            UserErrorCode.ALREADY_ENROLLED,
            UserErrorCode.CONFLICT,
            UserErrorCode.REFERRAL_CODE_INVALID,
            UserErrorCode.REFERRAL_SELF,
            UserErrorCode.REFERRAL_CHAIN,
        ),
    )
    async def enroll_member(
        self, info: GraphQLInfo, input: Annotated[EnrollMemberInput, INPUT]
    ) -> EnrollMemberPayload:
        try:
            view = await referrals.enroll_member(
                info.context.db,
                info.context.principal,
                partner_customer_ref=input.partner_customer_ref,
                email=input.email,
                member_number=input.member_number,
                language=input.language,
                referral_code=input.referral_code,
                birth_date=input.birth_date,
            )
        except DomainError as exc:
            return EnrollMemberPayload(user_errors=user_errors(exc.errors))
        return EnrollMemberPayload(member=Member.of(view))
