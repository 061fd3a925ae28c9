"""GraphQL for partners: onboarding (admins) and reading partners."""

from __future__ import annotations

import decimal
from datetime import datetime
from enum import Enum

import strawberry

from services.partners import service
from shared import clock, sql
from shared.errors import DomainError
from shared.graphql_types import Connection, GraphQLInfo, Money, Node, UserError, user_errors
from shared.ids import require_global_id, to_global_id
from shared.money import Rounding


@strawberry.enum
class EarnRounding(Enum):
    FLOOR = Rounding.FLOOR
    HALF_UP = Rounding.HALF_UP


@strawberry.type
class Contract:
    effective_from: datetime
    issue_price: Money
    redeem_price: Money
    issue_fee_per_point: Money
    breakage_share: decimal.Decimal


@strawberry.type
class Partner(Node):
    local_id: strawberry.Private[int]
    name: str
    currency: str = strawberry.field(description="The currency of its purchases.")
    earn_rate: decimal.Decimal = strawberry.field(description="Points per unit of currency.")
    earn_rounding: EarnRounding
    return_window_days: int
    created_at: datetime

    @classmethod
    def of(cls, view: service.PartnerView) -> Partner:
        return cls(
            id=strawberry.ID(to_global_id("Partner", view.id)),
            local_id=view.id,
            name=view.name,
            currency=view.currency,
            earn_rate=view.earn_rate,
            earn_rounding=EarnRounding(view.earn_rounding),
            return_window_days=view.return_window_days,
            created_at=view.created_at,
        )

    @strawberry.field(description="The contract in force now (prices per point).")
    async def contract(self, info: GraphQLInfo) -> Contract:
        async with sql.connection(info.context.db) as conn:
            return _contract(await service.contract_at(conn, self.local_id, clock.now()))


@strawberry.type
class Credentials:
    client_id: str
    client_secret: str = strawberry.field(description="Shown once; only its hash is stored.")


@strawberry.input
class CreatePartnerInput:
    name: str
    currency: str
    issue_price: decimal.Decimal
    redeem_price: decimal.Decimal
    earn_rate: decimal.Decimal
    return_window_days: int = 0
    earn_rounding: EarnRounding = EarnRounding.FLOOR
    issue_fee_per_point: decimal.Decimal = decimal.Decimal(0)
    breakage_share: decimal.Decimal = decimal.Decimal(0)


@strawberry.type
class CreatePartnerPayload:
    partner: Partner | None = None
    credentials: Credentials | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class UpdatePartnerContractInput:
    partner_id: strawberry.ID
    effective_from: datetime
    issue_price: decimal.Decimal
    redeem_price: decimal.Decimal
    issue_fee_per_point: decimal.Decimal = decimal.Decimal(0)
    breakage_share: decimal.Decimal = decimal.Decimal(0)


@strawberry.type
class UpdatePartnerContractPayload:
    contract: Contract | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _contract(c: service.ContractView) -> Contract:
    price = lambda v: Money(amount=v, currency=c.currency)  # noqa: E731
    return Contract(
        effective_from=c.effective_from,
        issue_price=price(c.issue_price),
        redeem_price=price(c.redeem_price),
        issue_fee_per_point=price(c.issue_fee_per_point),
        breakage_share=c.breakage_share,
    )


@strawberry.type
class PartnersQuery:
    @strawberry.field(description="All partners (admins).")
    async def partners(
        self, info: GraphQLInfo, first: int | None = None, after: str | None = None
    ) -> Connection[Partner]:
        async with info.context.session() as session:
            page = await service.list_partners(session, info.context.principal, first=first, after=after)
        return Connection.of(page, Partner.of)


@strawberry.type
class PartnersMutation:
    @strawberry.mutation(description="New prices for a partner from a given instant on (admins).")
    async def update_partner_contract(
        self, info: GraphQLInfo, input: UpdatePartnerContractInput
    ) -> UpdatePartnerContractPayload:
        async with info.context.session() as session:
            try:
                contract = await service.update_contract(
                    session,
                    info.context.principal,
                    partner_id=require_global_id(input.partner_id, "Partner", "partnerId"),
                    effective_from=input.effective_from,
                    issue_price=input.issue_price,
                    redeem_price=input.redeem_price,
                    issue_fee_per_point=input.issue_fee_per_point,
                    breakage_share=input.breakage_share,
                )
            except DomainError as exc:
                return UpdatePartnerContractPayload(user_errors=user_errors(exc.errors))
            await session.commit()
        return UpdatePartnerContractPayload(contract=_contract(contract))

    @strawberry.mutation(description="Onboard a partner: contract, ledger accounts, credentials.")
    async def create_partner(self, info: GraphQLInfo, input: CreatePartnerInput) -> CreatePartnerPayload:
        async with info.context.session() as session:
            try:
                created = await service.create_partner(
                    session,
                    info.context.principal,
                    name=input.name,
                    currency=input.currency.strip().upper(),
                    issue_price=input.issue_price,
                    redeem_price=input.redeem_price,
                    earn_rate=input.earn_rate,
                    return_window_days=input.return_window_days,
                    earn_rounding=input.earn_rounding.value,
                    issue_fee_per_point=input.issue_fee_per_point,
                    breakage_share=input.breakage_share,
                )
            except DomainError as exc:
                return CreatePartnerPayload(user_errors=user_errors(exc.errors))
            await session.commit()
        return CreatePartnerPayload(
            partner=Partner.of(created.partner),
            credentials=Credentials(client_id=created.client_id, client_secret=created.client_secret),
        )
