"""GraphQL for partners: onboarding (admins) and reading partners."""

from __future__ import annotations

import decimal
from datetime import datetime

import strawberry
from strawberry.dataloader import DataLoader

from services.partners import service
from shared.errors import DomainError
from shared.graphql_types import Connection, GraphQLInfo, Money, Node, UserError, user_errors
from shared.ids import require_global_id, to_global_id
from shared.money import Rounding

EarnRounding = strawberry.enum(Rounding, name="EarnRounding", description="How an earn is rounded.")


@strawberry.type
class Contract:
    effective_from: datetime
    issue_price: Money
    redeem_price: Money
    issue_fee_per_point: Money
    breakage_share: decimal.Decimal


TERMS_HIDDEN = (
    " Null unless the caller is this partner or an admin: of other partners, a partner sees only"
    " the id and name."
)


@strawberry.type(description="A partner brand of the coalition.")
class Partner(Node):
    local_id: strawberry.Private[int]
    view: strawberry.Private[service.PartnerView]
    name: str

    @classmethod
    def of(cls, view: service.PartnerView) -> Partner:
        return cls(
            id=strawberry.ID(to_global_id("Partner", view.id)),
            local_id=view.id,
            view=view,
            name=view.name,
        )

    def _terms(self, info: GraphQLInfo) -> service.PartnerView | None:
        return self.view if service.may_see_terms(info.context.principal, self.local_id) else None

    @strawberry.field(description="The currency of its purchases." + TERMS_HIDDEN)
    def currency(self, info: GraphQLInfo) -> str | None:
        terms = self._terms(info)
        return terms.currency if terms else None

    @strawberry.field(description="Points per unit of currency." + TERMS_HIDDEN)
    def earn_rate(self, info: GraphQLInfo) -> decimal.Decimal | None:
        terms = self._terms(info)
        return terms.earn_rate if terms else None

    @strawberry.field(description="How an earn's points are rounded, once per purchase." + TERMS_HIDDEN)
    def earn_rounding(self, info: GraphQLInfo) -> EarnRounding | None:
        terms = self._terms(info)
        return EarnRounding(terms.earn_rounding) if terms else None

    @strawberry.field(description="Days a purchase's points stay pending (returns)." + TERMS_HIDDEN)
    def return_window_days(self, info: GraphQLInfo) -> int | None:
        terms = self._terms(info)
        return terms.return_window_days if terms else None

    @strawberry.field(description="When the partner was onboarded." + TERMS_HIDDEN)
    def created_at(self, info: GraphQLInfo) -> datetime | None:
        terms = self._terms(info)
        return terms.created_at if terms else None

    @strawberry.field(description="The contract in force now (prices per point)." + TERMS_HIDDEN)
    async def contract(self, info: GraphQLInfo) -> Contract | None:
        found = await contract_loader(info).load(self.local_id)
        return _contract(found) if found else None


def contract_loader(info: GraphQLInfo) -> DataLoader[int, service.ContractView | None]:
    """Contracts in force, one statement per request for any number of partners; only those the
    caller may see are loaded at all (the service decides)."""
    loader = info.context.loaders.get("partner-contract")
    if loader is None:

        async def load(ids: list[int]) -> list[service.ContractView | None]:
            found = await service.current_contracts(info.context.db, info.context.principal, ids)
            return [found.get(i) for i in ids]

        loader = info.context.loaders["partner-contract"] = DataLoader(load_fn=load)
    return loader


def partner_loader(info: GraphQLInfo) -> DataLoader[int, Partner | None]:
    """Partners by id, one statement per request for any number (statements, histories)."""
    loader = info.context.loaders.get("partner")
    if loader is None:

        async def load(ids: list[int]) -> list[Partner | None]:
            found = await service.partners_by_id(info.context.db, ids)
            return [Partner.of(found[i]) if i in found else None for i in ids]

        loader = info.context.loaders["partner"] = DataLoader(load_fn=load)
    return loader


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
        page = await service.list_partners(info.context.db, info.context.principal, first=first, after=after)
        return Connection.of(page, Partner.of)


@strawberry.type
class PartnersMutation:
    @strawberry.mutation(description="New prices for a partner from a given instant on (admins).")
    async def update_partner_contract(
        self, info: GraphQLInfo, input: UpdatePartnerContractInput
    ) -> UpdatePartnerContractPayload:
        try:
            contract = await service.update_contract(
                info.context.db,
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
        return UpdatePartnerContractPayload(contract=_contract(contract))

    @strawberry.mutation(description="Onboard a partner: its first contract and its API credentials.")
    async def create_partner(self, info: GraphQLInfo, input: CreatePartnerInput) -> CreatePartnerPayload:
        try:
            created = await service.create_partner(
                info.context.db,
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
        return CreatePartnerPayload(
            partner=Partner.of(created.partner),
            credentials=Credentials(client_id=created.client_id, client_secret=created.client_secret),
        )
