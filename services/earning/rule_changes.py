"""Creating, changing and archiving earn rules: each a new version, in one transaction that also
tells every process to forget the partner's cached rules (`cache.notify_changed`).

Who may: a partner with the scope `rules:write`, for its own rules only; a coalition admin with
`admin:partners`, for any partner's (audit-logged). A partner naming another partner, or another
partner's rule, gets exactly the answer an unknown one gets (PARTNER_NOT_FOUND, RULE_NOT_FOUND).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from services.earning import cache
from services.earning.rules import (
    LINE_TERMS,
    MAX_CAP,
    MAX_KEY,
    MAX_MULTIPLIER,
    MAX_NAME,
    MAX_RATE,
    MAX_RULES_PER_PARTNER,
    PURCHASE_TERMS,
    TERMS,
    PartnerRules,
    RuleVersion,
)
from services.partners import service as partners
from shared import audit_log, clock, sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Forbidden, Validator
from shared.money import decimals_of
from shared.sql import DbConnection, Sql

RULES_SCOPE = "rules:write"
ADMIN_SCOPE = "admin:partners"
FIELD = {  # domain name -> GraphQL field name
    "name": "name",
    "sku": "sku",
    "category": "category",
    "multiplier": "multiplier",
    "points_per_unit": "pointsPerUnit",
    "min_spend": "minSpend",
    "cap_per_purchase": "capPerPurchase",
    "cap_per_member_day": "capPerMemberDay",
    "cap_per_member_month": "capPerMemberMonth",
    "valid_from": "validFrom",
    "valid_until": "validUntil",
}

NEW_RULE = Sql("INSERT INTO earn_rules (partner_id) VALUES (:p) RETURNING id")
COUNT_RULES = Sql("SELECT count(*) FROM earn_rules WHERE partner_id = :p")
LOCK_PARTNER_RULES = Sql("SELECT pg_advisory_xact_lock(hashtext('earn_rules'), CAST(:p AS integer))")
NEW_VERSION = Sql(
    "INSERT INTO earn_rule_versions (rule_id, partner_id, effective_from, name, sku, category,"
    " multiplier, points_per_unit, min_spend, cap_per_purchase, cap_per_member_day,"
    " cap_per_member_month, valid_from, valid_until, archived)"
    " VALUES (:rule, :p, :effective_from, :name, :sku, :category, :multiplier, :points_per_unit,"
    " :min_spend, :cap_per_purchase, :cap_per_member_day, :cap_per_member_month, :valid_from,"
    " :valid_until, :archived) RETURNING id"
)
RULE_PARTNER = Sql("SELECT partner_id FROM earn_rules WHERE id = :id")
PARTNER_EXISTS = Sql("SELECT 1 FROM partners WHERE id = :p")


def acting_partner(principal: Principal, partner_id: int | None) -> int:
    """The partner whose rules the caller manages: a partner only its own (naming another is
    PARTNER_NOT_FOUND, as an unknown one); an admin must name one."""
    if principal.partner_id is not None:
        principal.require(RULES_SCOPE)
        if partner_id is not None and partner_id != principal.partner_id:
            raise DomainError.single(UserErrorCode.PARTNER_NOT_FOUND, "no such partner", "partnerId")
        return principal.partner_id
    if not principal.is_admin:
        raise Forbidden("earn rules are managed by their partner (rules:write) or coalition admins")
    principal.require(ADMIN_SCOPE)
    if partner_id is None:
        raise DomainError.single(UserErrorCode.REQUIRED, "an admin names the partner", "partnerId")
    return partner_id


def check_terms(v: Validator, terms: dict[str, Any]) -> None:
    """A version's terms, whole (an update merges first, then checks the result)."""
    v.text(terms["name"], "name", max_length=MAX_NAME)
    for key in ("sku", "category"):
        if terms[key] is not None:
            v.text(terms[key], key, max_length=MAX_KEY)
    line_rule = terms["sku"] is not None or terms["category"] is not None
    v.check(
        not (terms["sku"] is not None and terms["category"] is not None),
        "category",
        UserErrorCode.INVALID,
        "a rule is for one SKU or one category, not both",
    )
    rates = [k for k in LINE_TERMS if terms[k] is not None]
    limits = [k for k in PURCHASE_TERMS if terms[k] is not None]
    if line_rule:
        v.check(
            len(rates) == 1,
            "multiplier" if not rates else "pointsPerUnit",
            UserErrorCode.REQUIRED if not rates else UserErrorCode.INVALID,
            "a SKU or category rule sets exactly one of multiplier and pointsPerUnit",
        )
        for key in limits:
            v.add(FIELD[key], UserErrorCode.INVALID, f"{FIELD[key]} is for a rule without sku or category")
    else:
        for key in rates:
            v.add(FIELD[key], UserErrorCode.INVALID, f"{FIELD[key]} needs a sku or a category")
        v.check(
            bool(limits),
            "minSpend",
            UserErrorCode.REQUIRED,
            "a rule without sku or category sets minSpend or a cap (capPerPurchase, capPerMemberDay,"
            " capPerMemberMonth)",
        )
    _check_decimal(v, terms["multiplier"], "multiplier", MAX_MULTIPLIER)
    _check_decimal(v, terms["points_per_unit"], "pointsPerUnit", MAX_RATE)
    _check_decimal(v, terms["min_spend"], "minSpend", Decimal(10**14))
    for key in ("cap_per_purchase", "cap_per_member_day", "cap_per_member_month"):
        value = terms[key]
        if value is not None:
            v.check(
                0 <= value <= MAX_CAP,
                FIELD[key],
                UserErrorCode.INVALID_AMOUNT,
                f"{FIELD[key]} must be between 0 and {MAX_CAP:,} points",
            )
    start, end = terms["valid_from"], terms["valid_until"]
    if v.instant(start, "validFrom") and v.instant(end, "validUntil") and end is not None:
        v.check(end > start, "validUntil", UserErrorCode.INVALID, "validUntil must be after validFrom")


def _check_decimal(v: Validator, value: Decimal | None, field: str, maximum: Decimal) -> None:
    if value is None:
        return
    value = Decimal(value)
    v.check(
        value.is_finite() and 0 <= value < maximum and decimals_of(value) <= 6,
        field,
        UserErrorCode.INVALID_AMOUNT,
        f"{field} must be at least 0 and below {maximum:,}, with at most 6 decimals",
    )


async def _write_version(
    conn: DbConnection,
    principal: Principal,
    *,
    rule_id: int,
    partner_id: int,
    effective_from: datetime,
    terms: dict[str, Any],
    archived: bool,
    action: str,
) -> RuleVersion:
    try:
        version_id = await NEW_VERSION.fetchval(
            conn, rule=rule_id, p=partner_id, effective_from=effective_from, archived=archived, **terms
        )
    except asyncpg.UniqueViolationError as exc:  # a version starting at that very instant exists
        raise DomainError.single(
            UserErrorCode.CONTRACT_EXISTS, "a version starting at that instant exists", "effectiveFrom"
        ) from exc
    await cache.notify_changed(conn, partner_id)
    if principal.is_admin:
        details = {k: (str(v) if v is not None else None) for k, v in terms.items()}
        await audit_log.record_on(
            conn,
            principal,
            action,
            f"earn_rule:{rule_id}",
            {**details, "archived": archived, "effective_from": effective_from.isoformat()},
        )
    return RuleVersion(rule_id, version_id, partner_id, effective_from, archived=archived, **terms)


async def create_rule(
    db: Database, principal: Principal, *, partner_id: int | None, terms: dict[str, Any]
) -> RuleVersion:
    """A new rule, in force from now (or its validFrom, if later): never for purchases before."""
    acting = acting_partner(principal, partner_id)
    now = clock.now()
    terms = {k: terms.get(k) for k in TERMS}
    terms["valid_from"] = terms["valid_from"] or now
    v = Validator()
    check_terms(v, terms)
    v.raise_if_any()
    async with sql.transaction(db) as conn:
        if await PARTNER_EXISTS.fetchval(conn, p=acting) is None:
            raise DomainError.single(UserErrorCode.PARTNER_NOT_FOUND, "no such partner", "partnerId")
        await LOCK_PARTNER_RULES.fetchval(conn, p=acting)
        if await COUNT_RULES.fetchval(conn, p=acting) >= MAX_RULES_PER_PARTNER:
            raise DomainError.single(
                UserErrorCode.LIMIT_REACHED,
                f"a partner has at most {MAX_RULES_PER_PARTNER} rules",
                "partnerId",
            )
        rule_id = await NEW_RULE.fetchval(conn, p=acting)
        version = await _write_version(
            conn,
            principal,
            rule_id=rule_id,
            partner_id=acting,
            effective_from=now,
            terms=terms,
            archived=False,
            action="earn_rule.create",
        )
    cache.rules_cache(db).forget(acting)
    return version


async def change_rule(
    db: Database,
    principal: Principal,
    *,
    rule_id: int,
    changes: dict[str, Any],
    effective_from: datetime | None,
    archive: bool = False,
) -> RuleVersion:
    """A new version of the rule from `effective_from` (now when omitted; never in the past),
    its terms those of the version before it with `changes` applied; `archive` ends the rule."""
    if principal.partner_id is not None:
        principal.require(RULES_SCOPE)
    elif principal.is_admin:
        principal.require(ADMIN_SCOPE)
    else:
        raise Forbidden("earn rules are managed by their partner (rules:write) or coalition admins")
    now = clock.now()
    start = effective_from or now
    v = Validator()
    if v.instant(start, "effectiveFrom"):
        v.check(
            start >= now - clock.CLOCK_SKEW,
            "effectiveFrom",
            UserErrorCode.IN_PAST,
            "a rule change cannot rewrite the past: effectiveFrom must not be in the past",
        )
    v.raise_if_any()
    async with sql.transaction(db) as conn:
        owner = await RULE_PARTNER.fetchval(conn, id=rule_id)
        if owner is None or (principal.partner_id is not None and owner != principal.partner_id):
            raise DomainError.single(UserErrorCode.RULE_NOT_FOUND, "no such earn rule", "ruleId")
        await LOCK_PARTNER_RULES.fetchval(conn, p=owner)
        rows = await cache.VERSIONS.fetch(conn, p=owner)
        rules = PartnerRules.of(owner, (RuleVersion.of(r) for r in rows))
        newest = rules.versions[rule_id][-1]
        if start <= newest.effective_from:
            raise DomainError.single(
                UserErrorCode.IN_PAST,
                f"the rule's latest version starts at {newest.effective_from.isoformat()}:"
                " effectiveFrom must be after it",
                "effectiveFrom",
            )
        terms = {**newest.terms(), **{k: changes[k] for k in TERMS if k in changes}}
        check = Validator()
        check_terms(check, terms)
        check.raise_if_any()
        version = await _write_version(
            conn,
            principal,
            rule_id=rule_id,
            partner_id=owner,
            effective_from=start,
            terms=terms,
            archived=archive,
            action="earn_rule.archive" if archive else "earn_rule.update",
        )
    cache.rules_cache(db).forget(owner)
    return version


async def partner_rules(db: Database, principal: Principal, partner_id: int | None) -> PartnerRules:
    """Every version of the partner's rules (the cached copy; a partner sees only its own)."""
    acting = acting_partner(principal, partner_id)
    async with sql.connection(db) as conn:
        if principal.is_admin and (await partners.cached_partner(db, conn, acting)) is None:
            raise DomainError.single(UserErrorCode.PARTNER_NOT_FOUND, "no such partner", "partnerId")
        return await cache.rules_cache(db).rules(conn, acting)
