"""GraphQL for referrals: `Me.referralCode` and `Me.referrals`. Rules live in
services/engagement/referrals.py (codes, enrolment) and referral_bonuses.py (the bonus).

`Me` is the ledger's type (services/ledger/schema/me.py: most of it is points), which cannot
import engagement; this module extends it with the referral fields under the same GraphQL name,
and its `me` field replaces the ledger's in the gateway's Query, so clients see one `Me`.
"""

from __future__ import annotations

import strawberry

from services.engagement import referrals as service
from services.ledger.schema import me as ledger_me
from shared.graphql_types import GraphQLInfo, Points
from shared.operations import field


@strawberry.type(description="The members the calling member referred, and the bonuses they earned.")
class Referrals:
    referred: int = strawberry.field(description="Members enrolled with the member's referral code.")
    rewarded: int = strawberry.field(
        description="Of them, those whose first purchase became available: each paid the bonus once."
    )
    points_earned: Points = strawberry.field(description="Bonus points earned by referring, in all.")


@strawberry.type(name="Me", description=ledger_me.Me.__strawberry_definition__.description)
class Me(ledger_me.Me):
    @strawberry.field(
        description="The member's referral code, to give to friends: 8 letters and digits (Crockford"
        " base32), the same every time. A partner enrolling a new member with it (enrollMember's"
        " referralCode) earns this member a bonus once that member's first purchase is available."
    )
    async def referral_code(self, info: GraphQLInfo) -> str:
        return await service.referral_code(info.context.db, info.context.principal)

    @strawberry.field(description="The members this member referred, and the bonuses earned for them.")
    async def referrals(self, info: GraphQLInfo) -> Referrals:
        found = await service.referral_summary(info.context.db, info.context.principal)
        return Referrals(referred=found.referred, rewarded=found.rewarded, points_earned=found.points)


@strawberry.type
class ReferralMeQuery:
    @field("The calling member.", access=ledger_me.MEMBER_ONLY)
    def me(self, info: GraphQLInfo) -> Me:
        return Me(member_id=info.context.principal.require_member())
