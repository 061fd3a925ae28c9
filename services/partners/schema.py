"""GraphQL for partners: onboarding (admins) and reading partners."""

from __future__ import annotations

import decimal
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.dataloader import DataLoader

from services.partners import service
from services.partners.models import PartnerKind
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import (
    After,
    Connection,
    First,
    GraphQLInfo,
    Money,
    Node,
    UserError,
    graphql_enum,
    user_errors,
)
from shared.ids import require_global_id, to_global_id
from shared.money import Rounding
from shared.operations import ANY_TOKEN, INPUT, PAGE_CODES, admin, field, mutation

PartnerKindEnum = graphql_enum(
    PartnerKind,
    name="PartnerKind",
    description="What a partner stands for.",
    values={
        PartnerKind.PARTNER: "A brand: its members earn and spend points at it.",
        PartnerKind.COALITION: "The coalition itself, as the issuer of the points it funds (referral"
        " bonuses, coalition promotions and activities); never created with createPartner.",
        PartnerKind.CHARITY: "A charity: members donate points to it (donatePoints), settled at its"
        " redeemPrice like a redemption; it never earns.",
    },
)
EarnRounding = graphql_enum(
    Rounding,
    name="EarnRounding",
    description="How a purchase's points are rounded: once per purchase, never per line.",
    values={
        Rounding.FLOOR: "Down to whole points (12.90 at 1 point per unit earns 12). The default.",
        Rounding.HALF_UP: "To the nearest whole point, halves up (12.50 earns 13).",
    },
)


@strawberry.type(
    description="A partner's prices per point from an instant on; a change is a new version, never an edit."
)
class Contract:
    effective_from: datetime = strawberry.field(description="When this version came into force.")
    issue_price: Money = strawberry.field(
        description="What a point the partner issued and nobody redeemed yet is worth in its books:"
        " the basis of its liability and of breakage."
    )
    redeem_price: Money = strawberry.field(
        description="What the partner is reimbursed per point members spend with it."
    )
    issue_fee_per_point: Money = strawberry.field(
        description="What the partner owes the coalition per point it issues."
    )
    breakage_share: decimal.Decimal = strawberry.field(
        description="The share (0 to 1) of the liability released by expired points that the partner"
        " owes the coalition."
    )


TERMS_HIDDEN = (
    " Null unless the caller is this partner or an admin: of other partners, a partner sees only"
    " the id and name."
)


@strawberry.type(description="A partner brand of the coalition.")
class Partner(Node):
    local_id: strawberry.Private[int]
    view: strawberry.Private[service.PartnerView]
    name: str = strawberry.field(description="Unique among partners; anyone with a token may read it.")

    @strawberry.field(description="A brand (PARTNER), a charity members donate to, or the coalition itself.")
    def kind(self) -> PartnerKindEnum:
        return PartnerKind(self.view.kind)

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

    @strawberry.field(
        description="Its IANA time zone: where its days and months begin (caps per member and day"
        " or month)." + TERMS_HIDDEN
    )
    def time_zone(self, info: GraphQLInfo) -> str | None:
        terms = self._terms(info)
        return terms.time_zone if terms else None

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


@strawberry.type(description="A new partner's API credentials (OAuth client credentials).")
class Credentials:
    client_id: str = strawberry.field(description="The client id (cl_…) its backend authenticates with.")
    client_secret: str = strawberry.field(description="Shown once; only its hash is stored.")


PRICE = "Money per point in the settlement currency: at least 0, below 1,000,000, at most 6 decimals."


@strawberry.input(description="A partner to onboard: its earn terms and its first contract.")
class CreatePartnerInput:
    name: str = strawberry.field(description="Unique among partners, at most 200 characters.")
    currency: str = strawberry.field(
        description="ISO 4217 code of its purchases (what recordPurchase amounts are in)."
    )
    issue_price: decimal.Decimal = strawberry.field(description="Contract.issuePrice. " + PRICE)
    redeem_price: decimal.Decimal = strawberry.field(description="Contract.redeemPrice. " + PRICE)
    earn_rate: decimal.Decimal = strawberry.field(
        description="Points per unit of its currency: at least 0, below 1,000,000, at most 6 decimals."
    )
    return_window_days: int = strawberry.field(
        default=0, description="Days a purchase's points stay pending (0 to 366): its return window."
    )
    earn_rounding: EarnRounding = strawberry.field(
        default=EarnRounding.FLOOR, description="How a purchase's points are rounded."
    )
    issue_fee_per_point: decimal.Decimal = strawberry.field(
        default=decimal.Decimal(0), description="Contract.issueFeePerPoint. " + PRICE
    )
    breakage_share: decimal.Decimal = strawberry.field(
        default=decimal.Decimal(0), description="Contract.breakageShare, 0 to 1."
    )
    time_zone: str = strawberry.field(
        default="UTC",
        description="Its IANA time zone name (Europe/Paris): where its days and months begin, for"
        " earn caps per member and day or month (INVALID otherwise).",
    )
    kind: PartnerKindEnum = strawberry.field(
        default=PartnerKind.PARTNER,
        description="PARTNER (a brand: earns and redeems) or CHARITY (members donate points to it with"
        " donatePoints, settled at its redeemPrice; it never earns). COALITION is INVALID.",
    )


@strawberry.type(description="The answer to createPartner.")
class CreatePartnerPayload:
    partner: Partner | None = strawberry.field(
        default=None, description="The new partner; null on userErrors."
    )
    credentials: Credentials | None = strawberry.field(
        default=None, description="Its backend's credentials, shown this once."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why nothing was created; empty on success."
    )


@strawberry.input(description="A new version of a partner's contract.")
class UpdatePartnerContractInput:
    partner_id: strawberry.ID = strawberry.field(description="The Partner's global ID.")
    effective_from: datetime = strawberry.field(
        description="When the new prices start: not in the past (5 minutes of clock skew allowed), so"
        " nothing already recorded is repriced."
    )
    issue_price: decimal.Decimal = strawberry.field(description="Contract.issuePrice. " + PRICE)
    redeem_price: decimal.Decimal = strawberry.field(description="Contract.redeemPrice. " + PRICE)
    issue_fee_per_point: decimal.Decimal = strawberry.field(
        default=decimal.Decimal(0), description="Contract.issueFeePerPoint. " + PRICE
    )
    breakage_share: decimal.Decimal = strawberry.field(
        default=decimal.Decimal(0), description="Contract.breakageShare, 0 to 1."
    )


@strawberry.type(description="The answer to updatePartnerContract.")
class UpdatePartnerContractPayload:
    contract: Contract | None = strawberry.field(
        default=None, description="The new version; null on userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why no version was added; empty on success."
    )


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
    @field("All partners, oldest first.", access=admin("admin:partners"), codes=PAGE_CODES)
    async def partners(
        self, info: GraphQLInfo, first: First = None, after: After = None
    ) -> Connection[Partner]:
        page = await service.list_partners(info.context.db, info.context.principal, first=first, after=after)
        return Connection.of(page, Partner.of)

    @field("Every charity members may donate points to (donatePoints), by name.", access=ANY_TOKEN)
    async def charities(self, info: GraphQLInfo) -> list[Partner]:
        return [Partner.of(v) for v in await service.charities(info.context.db)]


@strawberry.type
class PartnersMutation:
    @mutation(
        "New prices for a partner from a given instant on (audit-logged).",
        access=admin("admin:partners"),
        codes=(
            UserErrorCode.INVALID_ID,
            UserErrorCode.INVALID_AMOUNT,
            UserErrorCode.INVALID,
            UserErrorCode.IN_PAST,
            UserErrorCode.PARTNER_NOT_FOUND,
            UserErrorCode.CONTRACT_EXISTS,
        ),
    )
    async def update_partner_contract(
        self, info: GraphQLInfo, input: Annotated[UpdatePartnerContractInput, INPUT]
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

    @mutation(
        "Onboard a partner: its first contract and its API credentials (audit-logged).",
        access=admin("admin:partners"),
        codes=(
            UserErrorCode.REQUIRED,
            UserErrorCode.TOO_LONG,
            UserErrorCode.INVALID,
            UserErrorCode.UNKNOWN_CURRENCY,
            UserErrorCode.INVALID_AMOUNT,
            UserErrorCode.NAME_TAKEN,
        ),
    )
    async def create_partner(
        self, info: GraphQLInfo, input: Annotated[CreatePartnerInput, INPUT]
    ) -> CreatePartnerPayload:
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
                time_zone=input.time_zone,
                kind=PartnerKind(input.kind),
            )
        except DomainError as exc:
            return CreatePartnerPayload(user_errors=user_errors(exc.errors))
        return CreatePartnerPayload(
            partner=Partner.of(created.partner),
            credentials=Credentials(client_id=created.client_id, client_secret=created.client_secret),
        )
