"""Creating, listing and archiving promotions, each change in one transaction that tells every
process to forget the cached promotions (`promotion_cache.notify_changed`; a coalition
promotion's notice forgets them for every partner).

Who may: a partner with `rules:write`, for its own promotions only (naming another partner is
PARTNER_NOT_FOUND, as an unknown one); a coalition admin with `admin:partners`, for any partner,
or — leaving partnerId out — for the coalition (a coalition promotion, its points issued by the
coalition). Admin changes are audit-logged.

A promotion's terms are fixed once created (a purchase's stored breakdown names it); to change
one, archive it and create another. Archiving stops it at once for new purchases; past purchases
keep what they earned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from services.earning import promotion_cache
from services.earning.models import Channel
from services.earning.promotions import COALITION_ZONE, COLUMNS, Promotion, parse_rule
from services.earning.rule_changes import ADMIN_SCOPE, PARTNER_EXISTS, RULES_SCOPE
from services.partners import service as partners
from shared import audit_log, clock, sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Forbidden, Validator
from shared.money import decimals_of
from shared.pagination import Page, decode_cursor, make_page, page_size
from shared.settings import get_settings
from shared.sql import Sql

MAX_NAME = 200
MAX_KEYS = 100
MAX_MULTIPLIER = Decimal(1000)
MAX_POINTS = 10**12
MAX_DURATION = timedelta(days=366)

INSERT = Sql(
    "INSERT INTO promotions (partner_id, name, starts_at, ends_at, recurrence, recurrence_seconds,"
    " min_spend, min_spend_currency, categories, skus, channels, first_purchase, inactive_days,"
    " requires_code, multiplier, bonus_points, percent_of_amount, budget_points, per_member_limit,"
    " stackable, priority) VALUES (:partner_id, :name, :starts_at, :ends_at, :recurrence,"
    " :recurrence_seconds, :min_spend, :min_spend_currency, :categories, :skus, :channels,"
    " :first_purchase, :inactive_days, :requires_code, :multiplier, :bonus_points,"
    f" :percent_of_amount, :budget_points, :per_member_limit, :stackable, :priority) RETURNING {COLUMNS}"
)
ARCHIVE = Sql(
    f"UPDATE promotions SET archived_at = COALESCE(archived_at, now()) WHERE id = :id RETURNING {COLUMNS}"
)
OWNER = Sql("SELECT partner_id FROM promotions WHERE id = :id")
PAGE = Sql(
    f"SELECT {COLUMNS} FROM promotions WHERE partner_id IS NOT DISTINCT FROM CAST(:p AS bigint)"
    " AND id > :after ORDER BY id LIMIT :limit"
)


@dataclass(frozen=True)
class PromotionTerms:
    """What createPromotion receives, in domain names."""

    name: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    rule: str | None = None
    duration: timedelta | None = None
    min_spend: Decimal | None = None
    categories: tuple[str, ...] | None = None
    skus: tuple[str, ...] | None = None
    channels: tuple[Channel, ...] | None = None
    first_purchase: bool = False
    inactive_days: int | None = None
    requires_code: bool = False
    multiplier: Decimal | None = None
    bonus_points: int | None = None
    percent_of_amount: Decimal | None = None
    budget_points: int | None = None
    per_member_limit: int | None = None
    stackable: bool = False
    priority: int = 0


def acting_owner(principal: Principal, partner_id: int | None) -> int | None:
    """The partner whose promotion it is, or None for a coalition promotion (admins only)."""
    if principal.partner_id is not None:
        principal.require(RULES_SCOPE)
        if partner_id is not None and partner_id != principal.partner_id:
            raise DomainError.single(UserErrorCode.PARTNER_NOT_FOUND, "no such partner", "partnerId")
        return principal.partner_id
    if not principal.is_admin:
        raise Forbidden("promotions are managed by their partner (rules:write) or coalition admins")
    principal.require(ADMIN_SCOPE)
    return partner_id


def _positive(v: Validator, value: int | None, field: str, maximum: int = MAX_POINTS) -> None:
    if value is not None:
        v.check(
            0 < value <= maximum, field, UserErrorCode.INVALID_AMOUNT, f"{field} must be 1 to {maximum:,}"
        )


def check(v: Validator, t: PromotionTerms, starts_at: datetime, time_zone: str) -> None:
    v.text(t.name, "name", max_length=MAX_NAME)
    if v.instant(starts_at, "startsAt") and t.ends_at is not None and v.instant(t.ends_at, "endsAt"):
        v.check(t.ends_at > starts_at, "endsAt", UserErrorCode.INVALID, "endsAt must be after startsAt")
    if t.rule is not None or t.duration is not None:
        if t.rule is None:
            v.add("recurrence.rule", UserErrorCode.REQUIRED, "a recurrence needs its RRULE")
        else:
            try:
                parse_rule(t.rule, starts_at, time_zone)
            except (ValueError, TypeError) as exc:
                v.add("recurrence.rule", UserErrorCode.INVALID, f"not an RRULE: {exc}")
        ok = t.duration is not None and timedelta(seconds=1) <= t.duration <= MAX_DURATION
        v.check(ok, "recurrence.duration", UserErrorCode.INVALID, "duration must be 1 second to 366 days")
        if ok and t.duration is not None:
            v.check(
                t.duration.microseconds == 0,
                "recurrence.duration",
                UserErrorCode.INVALID,
                "duration is whole seconds",
            )
    effects = [e for e in ("multiplier", "bonus_points", "percent_of_amount") if getattr(t, e) is not None]
    if v.check(
        len(effects) == 1,
        "effect",
        UserErrorCode.INVALID if effects else UserErrorCode.REQUIRED,
        "an effect sets exactly one of multiplier, bonusPoints and percentOfAmount",
    ):
        if t.multiplier is not None:
            v.check(
                1 < t.multiplier <= MAX_MULTIPLIER and decimals_of(t.multiplier) <= 6,
                "effect.multiplier",
                UserErrorCode.INVALID_AMOUNT,
                "multiplier must be above 1 and at most 1000, with at most 6 decimals",
            )
        if t.percent_of_amount is not None:
            v.check(
                0 < t.percent_of_amount <= 1000 and decimals_of(t.percent_of_amount) <= 6,
                "effect.percentOfAmount",
                UserErrorCode.INVALID_AMOUNT,
                "percentOfAmount must be above 0 and at most 1000, with at most 6 decimals",
            )
        _positive(v, t.bonus_points, "effect.bonusPoints")
    if t.min_spend is not None:
        v.check(
            t.min_spend.is_finite() and 0 <= t.min_spend < 10**14 and decimals_of(t.min_spend) <= 6,
            "conditions.minSpend",
            UserErrorCode.INVALID_AMOUNT,
            "minSpend must be at least 0, with at most 6 decimals",
        )
    for key in ("categories", "skus"):
        values = getattr(t, key)
        if values is not None:
            v.check(
                0 < len(values) <= MAX_KEYS,
                f"conditions.{key}",
                UserErrorCode.INVALID,
                f"{key}, when sent, lists 1 to {MAX_KEYS}",
            )
            for i, value in enumerate(values):
                v.text(value, f"conditions.{key}[{i}]", max_length=MAX_NAME)
    if t.channels is not None:
        v.check(bool(t.channels), "conditions.channels", UserErrorCode.INVALID, "channels lists at least one")
    _positive(v, t.inactive_days, "conditions.inactiveDays", 36_600)
    _positive(v, t.budget_points, "budgetPoints")
    _positive(v, t.per_member_limit, "perMemberLimit", 1_000_000)
    v.check(abs(t.priority) <= 1_000_000, "priority", UserErrorCode.INVALID, "priority is within ±1,000,000")


async def create_promotion(
    db: Database, principal: Principal, *, partner_id: int | None, terms: PromotionTerms
) -> Promotion:
    owner = acting_owner(principal, partner_id)
    starts_at = terms.starts_at or clock.now()
    async with sql.transaction(db) as conn:
        partner = await partners.cached_partner(db, conn, owner) if owner is not None else None
        if owner is not None and (partner is None or await PARTNER_EXISTS.fetchval(conn, p=owner) is None):
            raise DomainError.single(UserErrorCode.PARTNER_NOT_FOUND, "no such partner", "partnerId")
        zone = partner.time_zone if partner is not None else COALITION_ZONE
        # A coalition promotion's minimum spend is in the settlement currency.
        currency = partner.currency if partner else get_settings().settlement_currency
        v = Validator()
        check(v, terms, starts_at, zone)
        v.raise_if_any()
        row = await INSERT.fetchrow(
            conn,
            partner_id=owner,
            name=terms.name,
            starts_at=starts_at,
            ends_at=terms.ends_at,
            recurrence=terms.rule,
            recurrence_seconds=int(terms.duration.total_seconds()) if terms.duration else None,
            min_spend=terms.min_spend,
            min_spend_currency=currency if terms.min_spend is not None else None,
            categories=list(terms.categories) if terms.categories is not None else None,
            skus=list(terms.skus) if terms.skus is not None else None,
            channels=[c.value for c in terms.channels] if terms.channels is not None else None,
            first_purchase=terms.first_purchase,
            inactive_days=terms.inactive_days,
            requires_code=terms.requires_code,
            multiplier=terms.multiplier,
            bonus_points=terms.bonus_points,
            percent_of_amount=terms.percent_of_amount,
            budget_points=terms.budget_points,
            per_member_limit=terms.per_member_limit,
            stackable=terms.stackable,
            priority=terms.priority,
        )
        assert row is not None
        await promotion_cache.notify_changed(conn, owner)
        if principal.is_admin:
            await audit_log.record_on(conn, principal, "promotion.create", f"promotion:{row['id']}", {})
    promotion_cache.promotions_cache(db).forget(promotion_cache.key_of(owner))
    return Promotion.of(row, zone)


async def archive_promotion(db: Database, principal: Principal, promotion_id: int) -> Promotion:
    acting_owner(principal, None)
    async with sql.transaction(db) as conn:
        row = await OWNER.fetchrow(conn, id=promotion_id)
        if row is None or (principal.partner_id is not None and row["partner_id"] != principal.partner_id):
            raise DomainError.single(UserErrorCode.PROMOTION_NOT_FOUND, "no such promotion", "id")
        archived = await ARCHIVE.fetchrow(conn, id=promotion_id)
        assert archived is not None
        await promotion_cache.notify_changed(conn, archived["partner_id"])
        if principal.is_admin:
            await audit_log.record_on(conn, principal, "promotion.archive", f"promotion:{promotion_id}", {})
    promotion_cache.promotions_cache(db).forget(promotion_cache.key_of(archived["partner_id"]))
    return Promotion.of(archived)


async def list_promotions(
    db: Database, principal: Principal, *, partner_id: int | None, first: int | None, after: str | None
) -> Page[Promotion]:
    """A partner's promotions (a partner: its own; an admin: any, or the coalition's with no
    partnerId), oldest first, archived ones included."""
    owner = acting_owner(principal, partner_id)
    size = page_size(first)
    async with sql.connection(db) as conn:
        rows = await PAGE.fetch(conn, p=owner, after=decode_cursor(after) or 0, limit=size + 1)
    return make_page([Promotion.of(r) for r in rows], size, lambda p: p.id)
