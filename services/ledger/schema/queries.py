"""The ledger's queries: the expiry policy, and points about to expire (admins)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import strawberry

from services.ledger import service
from services.ledger.models import ExpiryMode
from services.ledger.schema.types import ExpiryPolicy, MemberExpiry, MemberRef
from shared.graphql_types import After, Connection, First, GraphQLInfo
from shared.operations import ANY_TOKEN, PAGE_CODES, admin, field


@strawberry.type
class LedgerQuery:
    @field("How long points live, and whether activity extends them.", access=ANY_TOKEN)
    async def expiry_policy(self, info: GraphQLInfo) -> ExpiryPolicy:
        current = await service.expiry_policy(info.context.db)
        return ExpiryPolicy(months=current.months, mode=ExpiryMode(current.mode))

    @field(
        "Points about to expire, per member and day (UTC), soonest first: what re-engagement campaigns"
        " start from.",
        access=admin("admin:partners"),
        codes=PAGE_CODES,
    )
    async def points_expiring_soon(
        self,
        info: GraphQLInfo,
        within: Annotated[
            timedelta, strawberry.argument(description="How far ahead to look, from now (P30D).")
        ],
        first: First = None,
        after: After = None,
    ) -> Connection[MemberExpiry]:
        page = await service.points_expiring_soon(
            info.context.db, info.context.principal, within, first=first, after=after
        )
        return Connection.of(
            page,
            lambda e: MemberExpiry(
                member=MemberRef(member_number=e.member_number),
                expires_on=e.expires_on,
                points=e.points,
            ),
        )
