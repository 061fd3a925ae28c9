"""Onboarding partners and reading their terms.

A partner's earn rules (currency, earn rate, rounding, return window) live on the partner; its
prices live in contracts versioned in time, so a price change never reprices the past.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity import service as identity
from services.partners.models import Partner, PartnerContract, PartnerKind
from shared import audit_log, clock, sql
from shared.access import PARTNER_SCOPES, Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator
from shared.money import PRICE_DECIMALS, Rounding, decimals_of, is_known_currency
from shared.pagination import Page, decode_cursor, make_page, page_size
from shared.settings import get_settings
from shared.sql import DbConnection, Sql

# The first contract covers everything before it, so a purchase back-dated before onboarding
# still has a price.
BEGINNING_OF_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_NAME = 200
BACKEND_SUFFIX = " backend"


def backend_client_name(partner_name: str) -> str:
    """The label of a partner's first client: its name and " backend", the name cut so the label
    fits identity's limit (a 200-character partner name once failed as a 208-character client)."""
    room = identity.MAX_CLIENT_NAME_LENGTH - len(BACKEND_SUFFIX)
    return partner_name.strip()[:room].rstrip() + BACKEND_SUFFIX


MAX_RETURN_WINDOW_DAYS = 366


def is_time_zone(name: str) -> bool:
    """An IANA time zone this machine's tz database knows (what zoneinfo can load)."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class PartnerView:
    id: int
    name: str
    currency: str
    earn_rate: Decimal
    earn_rounding: str
    return_window_days: int
    created_at: datetime
    time_zone: str = "UTC"
    kind: str = "PARTNER"  # PartnerKind: COALITION for the coalition as an issuer


@dataclass(frozen=True)
class ContractView:
    partner_id: int
    effective_from: datetime
    currency: str
    issue_price: Decimal
    redeem_price: Decimal
    issue_fee_per_point: Decimal
    breakage_share: Decimal


@dataclass(frozen=True)
class NewPartner:
    partner: PartnerView
    client_id: str
    client_secret: str


def _view(row: Partner) -> PartnerView:
    return PartnerView(
        id=row.id,
        name=row.name,
        currency=row.currency,
        earn_rate=row.earn_rate,
        earn_rounding=row.earn_rounding,
        return_window_days=row.return_window_days,
        created_at=row.created_at,
        time_zone=row.time_zone,
        kind=row.kind,
    )


def _check_price(v: Validator, value: Decimal, field: str) -> None:
    if v.check(value >= 0, field, UserErrorCode.INVALID_AMOUNT, f"{field} must not be negative"):
        v.check(
            decimals_of(value) <= PRICE_DECIMALS and value < Decimal(1_000_000),
            field,
            UserErrorCode.INVALID_AMOUNT,
            f"{field} must be below 1,000,000 with at most {PRICE_DECIMALS} decimals",
        )


async def create_partner(
    db: Database,
    principal: Principal,
    *,
    name: str,
    currency: str,
    issue_price: Decimal,
    redeem_price: Decimal,
    earn_rate: Decimal,
    return_window_days: int = 0,
    earn_rounding: str = Rounding.FLOOR,
    issue_fee_per_point: Decimal = Decimal(0),
    breakage_share: Decimal = Decimal(0),
    time_zone: str = "UTC",
    kind: PartnerKind = PartnerKind.PARTNER,
) -> NewPartner:
    """Creates the partner, its first contract and its API credentials, in one transaction (the
    ledger opens the partner's accounts the first time it books for it). `kind` CHARITY makes a
    charity: members donate to it, it never earns (its earnRate is ignored)."""
    principal.require_admin("admin:partners")
    v = Validator()
    v.check(
        kind in (PartnerKind.PARTNER, PartnerKind.CHARITY),
        "kind",
        UserErrorCode.INVALID,
        "kind must be PARTNER or CHARITY (the coalition's own row is created by the coalition)",
    )
    v.text(name, "name", max_length=MAX_NAME)
    v.check(
        is_known_currency(currency),
        "currency",
        UserErrorCode.UNKNOWN_CURRENCY,
        f"currency {currency!r} is not an ISO 4217 code this coalition knows",
    )
    _check_price(v, issue_price, "issuePrice")
    _check_price(v, redeem_price, "redeemPrice")
    _check_price(v, earn_rate, "earnRate")
    _check_price(v, issue_fee_per_point, "issueFeePerPoint")
    v.check(
        Decimal(0) <= breakage_share <= Decimal(1),
        "breakageShare",
        UserErrorCode.INVALID_AMOUNT,
        "breakageShare must be between 0 and 1",
    )
    v.check(
        0 <= return_window_days <= MAX_RETURN_WINDOW_DAYS,
        "returnWindowDays",
        UserErrorCode.INVALID_AMOUNT,
        f"returnWindowDays must be between 0 and {MAX_RETURN_WINDOW_DAYS}",
    )
    v.check(
        earn_rounding in (Rounding.FLOOR, Rounding.HALF_UP),
        "earnRounding",
        UserErrorCode.INVALID,
        "earnRounding must be FLOOR or HALF_UP",
    )
    v.check(
        is_time_zone(time_zone),
        "timeZone",
        UserErrorCode.INVALID,
        f"timeZone {time_zone!r} is not an IANA time zone name (Europe/Paris, UTC…)",
    )
    v.raise_if_any()
    terms = {
        "currency": currency,
        "issue_price": issue_price,
        "redeem_price": redeem_price,
        "earn_rate": earn_rate,
        "return_window_days": return_window_days,
        "earn_rounding": earn_rounding,
        "issue_fee_per_point": issue_fee_per_point,
        "breakage_share": breakage_share,
        "time_zone": time_zone,
        "kind": kind,
    }
    async with db.sessions() as session, session.begin():
        return await _create(session, principal, name.strip(), **terms)


async def _create(
    session: AsyncSession,
    principal: Principal,
    name: str,
    *,
    currency: str,
    issue_price: Decimal,
    redeem_price: Decimal,
    earn_rate: Decimal,
    return_window_days: int,
    earn_rounding: str,
    issue_fee_per_point: Decimal,
    breakage_share: Decimal,
    time_zone: str,
    kind: PartnerKind = PartnerKind.PARTNER,
) -> NewPartner:
    if await session.scalar(select(Partner.id).where(Partner.name == name)) is not None:
        raise DomainError.single(UserErrorCode.NAME_TAKEN, f"a partner named {name!r} exists", "name")

    partner = Partner(
        name=name,
        currency=currency,
        earn_rate=earn_rate,
        earn_rounding=earn_rounding,
        return_window_days=return_window_days,
        time_zone=time_zone,
        kind=str(kind),
    )
    session.add(partner)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent create with the same name
        raise DomainError.single(
            UserErrorCode.NAME_TAKEN, f"a partner named {name!r} exists", "name"
        ) from exc
    session.add(
        PartnerContract(
            partner_id=partner.id,
            effective_from=BEGINNING_OF_TIME,
            currency=get_settings().settlement_currency,
            issue_price=issue_price,
            redeem_price=redeem_price,
            issue_fee_per_point=issue_fee_per_point,
            breakage_share=breakage_share,
        )
    )
    credentials = await identity.create_client(
        session, name=backend_client_name(name), scopes=sorted(PARTNER_SCOPES), partner_id=partner.id
    )
    await session.flush()
    await session.refresh(partner)
    await audit_log.record(
        session,
        principal,
        "partner.create",
        f"partner:{partner.id}",
        {
            "name": name,
            "currency": currency,
            "issue_price": str(issue_price),
            "redeem_price": str(redeem_price),
            "earn_rate": str(earn_rate),
            "return_window_days": return_window_days,
            "time_zone": time_zone,
            "kind": str(kind),
            "client_id": credentials.client_id,
        },
    )
    return NewPartner(_view(partner), credentials.client_id, credentials.client_secret)


async def list_partners(
    db: Database, principal: Principal, *, first: int | None, after: str | None
) -> Page[PartnerView]:
    principal.require_admin("admin:partners")
    size = page_size(first)
    # The coalition's own issuer row is not a partner an admin onboards or lists.
    stmt = select(Partner).where(Partner.kind == PartnerKind.PARTNER).order_by(Partner.id).limit(size + 1)
    position = decode_cursor(after)
    if position is not None:
        stmt = stmt.where(Partner.id > position)
    async with db.sessions() as session:
        rows = [_view(p) for p in (await session.scalars(stmt)).all()]
    return make_page(rows, size, lambda p: p.id)


CHARITIES = Sql(
    "SELECT id, name, currency, earn_rate, earn_rounding, return_window_days, created_at, time_zone,"
    " kind FROM partners WHERE kind = 'CHARITY' ORDER BY name, id"
)


async def charities(db: Database) -> list[PartnerView]:
    """Every charity, by name: where members may donate (anyone with a token may list them)."""
    async with sql.connection(db) as conn:
        rows = await CHARITIES.fetch(conn)
    return [PartnerView(**dict(r)) for r in rows]


PARTNERS = Sql(
    "SELECT id, name, currency, earn_rate, earn_rounding, return_window_days, created_at, time_zone,"
    " kind"
    " FROM partners WHERE id = ANY(CAST(:ids AS bigint[]))"
)
CONTRACT_AT = Sql(
    "SELECT partner_id, effective_from, currency, issue_price, redeem_price, issue_fee_per_point,"
    " breakage_share FROM partner_contracts WHERE partner_id = :p AND effective_from <= :at"
    " ORDER BY effective_from DESC LIMIT 1"
)


CONTRACTS_AT = Sql(
    "SELECT DISTINCT ON (partner_id) partner_id, effective_from, currency, issue_price, redeem_price,"
    " issue_fee_per_point, breakage_share FROM partner_contracts"
    " WHERE partner_id = ANY(CAST(:ids AS bigint[])) AND effective_from <= :at"
    " ORDER BY partner_id, effective_from DESC"
)


def may_see_terms(principal: Principal, partner_id: int) -> bool:
    """The tenancy rule for partners: a partner sees its own terms and contract; of the others
    only their id and name (what a statement needs); admins see everything."""
    return principal.is_admin or principal.partner_id == partner_id


async def partners_by_id(db: Database, partner_ids: list[int]) -> dict[int, PartnerView]:
    """Partners by id in one statement (DataLoaders). Anyone may learn a partner's id and name;
    what else the caller may see is `may_see_terms`' to say."""
    async with sql.connection(db) as conn:
        return await get_partners(conn, partner_ids)


async def current_contracts(
    db: Database, principal: Principal, partner_ids: list[int]
) -> dict[int, ContractView]:
    """The contracts in force now of the partners the caller may see the terms of."""
    visible = [p for p in partner_ids if may_see_terms(principal, p)]
    if not visible:
        return {}
    async with sql.connection(db) as conn:
        rows = await CONTRACTS_AT.fetch(conn, ids=visible, at=clock.now())
    return {r["partner_id"]: ContractView(**dict(r)) for r in rows}


async def get_partners(conn: DbConnection, partner_ids: list[int]) -> dict[int, PartnerView]:
    """For other services inside their own transaction (one statement for any number)."""
    rows = await PARTNERS.fetch(conn, ids=partner_ids)
    return {r["id"]: PartnerView(**dict(r)) for r in rows}


async def get_partner(conn: DbConnection, partner_id: int) -> PartnerView | None:
    return (await get_partners(conn, [partner_id])).get(partner_id)


async def contract_at(conn: DbConnection, partner_id: int, at: datetime) -> ContractView:
    """The contract in force at `at` (the latest version effective at or before it)."""
    row = await CONTRACT_AT.fetchrow(conn, p=partner_id, at=at)
    if row is None:
        raise LookupError(f"partner {partner_id} has no contract in force at {at.isoformat()}")
    return ContractView(**dict(row))


async def cached_partner(db: Database, conn: DbConnection, partner_id: int) -> PartnerView | None:
    """A partner's earn terms, kept per process for PARTNER_CACHE_SECONDS: they are read on
    every purchase and change rarely, so a change reaches every gateway within that time."""
    return await db.cache.get_or_load(
        ("partner", partner_id),
        get_settings().partner_cache_seconds,
        lambda: get_partner(conn, partner_id),
    )


async def update_contract(
    db: Database,
    principal: Principal,
    *,
    partner_id: int,
    effective_from: datetime,
    issue_price: Decimal,
    redeem_price: Decimal,
    issue_fee_per_point: Decimal,
    breakage_share: Decimal,
) -> ContractView:
    """A new version of the partner's prices from `effective_from` on. It may not start in the
    past: what already happened stays priced as it was."""
    principal.require_admin("admin:partners")
    v = Validator()
    _check_price(v, issue_price, "issuePrice")
    _check_price(v, redeem_price, "redeemPrice")
    _check_price(v, issue_fee_per_point, "issueFeePerPoint")
    v.check(
        Decimal(0) <= breakage_share <= Decimal(1),
        "breakageShare",
        UserErrorCode.INVALID_AMOUNT,
        "breakageShare must be between 0 and 1",
    )
    if v.instant(effective_from, "effectiveFrom"):
        v.check(
            effective_from >= clock.now() - clock.CLOCK_SKEW,
            "effectiveFrom",
            UserErrorCode.IN_PAST,
            "a contract change cannot reprice the past: effectiveFrom must not be in the past",
        )
    v.raise_if_any()
    async with db.sessions() as session, session.begin():
        if await session.get(Partner, partner_id) is None:
            raise DomainError.single(UserErrorCode.PARTNER_NOT_FOUND, "no such partner", "partnerId")
        return await _add_contract(
            session,
            principal,
            partner_id=partner_id,
            effective_from=effective_from,
            issue_price=issue_price,
            redeem_price=redeem_price,
            issue_fee_per_point=issue_fee_per_point,
            breakage_share=breakage_share,
        )


async def _add_contract(
    session: AsyncSession,
    principal: Principal,
    *,
    partner_id: int,
    effective_from: datetime,
    issue_price: Decimal,
    redeem_price: Decimal,
    issue_fee_per_point: Decimal,
    breakage_share: Decimal,
) -> ContractView:
    contract = PartnerContract(
        partner_id=partner_id,
        effective_from=effective_from,
        currency=get_settings().settlement_currency,
        issue_price=issue_price,
        redeem_price=redeem_price,
        issue_fee_per_point=issue_fee_per_point,
        breakage_share=breakage_share,
    )
    session.add(contract)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise DomainError.single(
            UserErrorCode.CONTRACT_EXISTS, "a version starting at that instant exists", "effectiveFrom"
        ) from exc
    await audit_log.record(
        session,
        principal,
        "partner.contract",
        f"partner:{partner_id}",
        {
            "effective_from": effective_from.isoformat(),
            "issue_price": str(issue_price),
            "redeem_price": str(redeem_price),
            "issue_fee_per_point": str(issue_fee_per_point),
            "breakage_share": str(breakage_share),
        },
    )
    return ContractView(
        partner_id=partner_id,
        effective_from=effective_from,
        currency=contract.currency,
        issue_price=issue_price,
        redeem_price=redeem_price,
        issue_fee_per_point=issue_fee_per_point,
        breakage_share=breakage_share,
    )
