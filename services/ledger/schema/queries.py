"""The ledger's queries: the expiry policy, and points about to expire (admins)."""

from __future__ import annotations

from datetime import timedelta

import strawberry

from services.ledger import service
from services.ledger.models import ExpiryMode
from services.ledger.schema.types import ExpiryPolicy, MemberExpiry, MemberRef
from shared.graphql_types import Connection, GraphQLInfo


@strawberry.type
class LedgerQuery:
    @strawberry.field(description="How long points live, and whether activity extends them.")
    async def expiry_policy(self, info: GraphQLInfo) -> ExpiryPolicy:
        current = await service.expiry_policy(info.context.db)
        return ExpiryPolicy(months=current.months, mode=ExpiryMode(current.mode))

    @strawberry.field(description="Points about to expire, per member and day, soonest first (admins).")
    async def points_expiring_soon(
        self, info: GraphQLInfo, within: timedelta, first: int | None = None, after: str | None = None
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
