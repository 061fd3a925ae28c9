"""GraphQL for tiers: createTier (admins) and tiers. Rules live in services/engagement/tiers.py."""

from __future__ import annotations

import decimal
from typing import Annotated

import strawberry

from services.engagement import tiers as service
from services.ledger.schema.tiers import Tier
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import GraphQLInfo, Points, UserError, user_errors
from shared.operations import ANY_TOKEN, INPUT, admin, field, mutation

CODES = (
    UserErrorCode.REQUIRED,
    UserErrorCode.TOO_LONG,
    UserErrorCode.NAME_TAKEN,
    UserErrorCode.INVALID,
    UserErrorCode.INVALID_AMOUNT,
)


@strawberry.input(description="A coalition-wide status tier.")
class CreateTierInput:
    name: str = strawberry.field(description="1 to 100 characters, unique (case-insensitive).")
    qualifying_points: Points = strawberry.field(
        description="Qualifying points over the rolling window that reach it: 0 (a base tier every"
        " member holds) or more, unique among tiers."
    )
    multiplier: decimal.Decimal = strawberry.field(
        description='Base points at every partner times this: 1 to 100, at most 4 decimals ("1.5").'
    )
    benefits: list[str] = strawberry.field(default_factory=list, description="Shown to members, up to 50.")


@strawberry.type(description="The answer to createTier.")
class CreateTierPayload:
    tier: Tier | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing changed.")


@strawberry.type
class TiersQuery:
    @field("Every tier, lowest qualifyingPoints first.", access=ANY_TOKEN)
    async def tiers(self, info: GraphQLInfo) -> list[Tier]:
        return [Tier.of(t) for t in (await service.tiers(info.context.db)).tiers]


@strawberry.type
class TiersMutation:
    @mutation(
        "A new tier: members whose qualifying points reach it are upgraded at their next earn; its"
        " multiplier applies to base points at every partner.",
        access=admin("admin:partners"),
        codes=CODES,
    )
    async def create_tier(
        self, info: GraphQLInfo, input: Annotated[CreateTierInput, INPUT]
    ) -> CreateTierPayload:
        try:
            created = await service.create_tier(
                info.context.db,
                info.context.principal,
                service.TierTerms(
                    name=input.name,
                    qualifying_points=int(input.qualifying_points),
                    multiplier=input.multiplier,
                    benefits=tuple(input.benefits),
                ),
            )
        except DomainError as exc:
            return CreateTierPayload(user_errors=user_errors(exc.errors))
        return CreateTierPayload(tier=Tier.of(created))
