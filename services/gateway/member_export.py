"""A member's export of their own data, gathered from every service that holds some.

The ledger builds the document in one REPEATABLE READ snapshot (`ledger.member_data`); the
services above it (earning, engagement, notifications) each add their part as a `Section`
read in that snapshot. They are put together here, at the top of the one-way order of services,
because only the gateway may import them all: `exportMyData` and `GET /account/export.json` both
answer `export_my_data`, so the two can never disagree.
"""

from __future__ import annotations

import json
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from strawberry.scalars import JSON

from services.earning import member_data as earning_data
from services.engagement import member_data as engagement_data
from services.ledger import member_data
from services.ledger.schema.me import MEMBER_ONLY
from services.notifications import member_data as notifications_data
from shared.access import Principal
from shared.database import Database
from shared.errors import AccessError
from shared.graphql_types import GraphQLInfo
from shared.http import error_response
from shared.operations import field

EXPORT_PATH = "/account/export.json"
SECTIONS: tuple[member_data.Section, ...] = (
    earning_data.section,
    engagement_data.section,
    notifications_data.section,
)


async def export_my_data(db: Database, principal: Principal) -> dict[str, Any]:
    return await member_data.export_my_data(db, principal, SECTIONS)


@strawberry.type
class MemberDataQuery:
    @field(
        "Everything the coalition holds on the calling member, as one JSON document (also"
        " downloadable as GET /account/export.json with the same token). Shape (version 1; instants"
        " ISO 8601, partners as {id, name}): {version, exportedAt, profile {memberNumber email"
        " birthDate createdAt activated passwordChangedAt settings {requireCodeToSpend language"
        " notifications {tierChanges expiringPoints rewardVouchers transfersReceived}}}, links"
        " [{partner linkedAt how (ENROLLED|CARD_PRESENTED) partnerCustomerRef}], balance {available"
        " pending held}, transactions [{id kind points status orderId occurredAt partner}] newest"
        " first, lots [{id issuer points remaining earnedAt availableAt expiresAt closedAt}], holds"
        " [{id partner orderId points status capturedPoints createdAt expiresAt closedAt}], vouchers"
        " [{code partner rewardId quantity points occurredAt cancelled}], debts [{creditor points"
        " remaining}], tier {name since qualifiesUntil} or null, promoCodes [{code partner orderId"
        " usedAt releasedAt}], activities [{activity {code name kind} partner points occurredAt"
        " npsScore comment data}], transfers [{direction (SENT|RECEIVED) counterpart (the other"
        " member's number; null once erased) points message createdAt}], referrals {code referredAt"
        " referred [{referredAt bonusPoints rewardedAt}]}, mails [{kind status skipReason createdAt"
        " sentAt}]}; lists oldest first unless said otherwise.",
        access=MEMBER_ONLY,
    )
    async def export_my_data(self, info: GraphQLInfo) -> JSON:
        return await export_my_data(info.context.db, info.context.principal)


async def download(request: Request, principal: Principal) -> Response:
    """200 with the document as an attachment; 403 (GraphQL-shaped error) for any token that is
    not a live member's."""
    try:
        document = await export_my_data(request.app.state.db, principal)
    except AccessError as exc:
        return error_response(403, exc.code, str(exc))
    number = document["profile"]["memberNumber"]
    return Response(
        json.dumps(document, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="coalition-member-{number}.json"',
            "Cache-Control": "no-store",
        },
    )
