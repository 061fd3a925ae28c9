"""The earning service's front door: what a purchase earns (`record_purchase`, `preview_earn`;
many at once: `record_purchases`, `import_purchases` in `bulk`), refunds by line
(`reverse_purchase`), and a partner's earn rules (`rule_changes`).

The engine (`engine.evaluate`) decides; the ledger books (`ledger.record_purchase` with the
points and the document to store). The usual earn stays the ledger's one statement: rules come
from the per-process cache (`cache`), the engine is pure Python, and only a partner with a cap per
member takes the ledger's general path, so the member's earnings in the period are read under the
member's wallet lock in the earn's own transaction (exact under concurrency).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.earning import (
    bulk,
    decisions,
    promo_codes,
    promotion_awards,
    promotion_changes,
    purchases,
    refunds,
    rule_changes,
)
from services.earning.engine import Basket, Result, evaluate
from services.earning.promotion_changes import PromotionTerms
from services.earning.promotions import Promotion
from services.earning.purchases import LineInput, PurchaseInput
from services.earning.refunds import RefundLine
from services.earning.rules import RuleVersion
from services.ledger import service as ledger
from services.members import service as members
from shared import clock, sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import InputError, UserError, Validator
from shared.money import Money
from shared.pagination import Page
from shared.sql import DbConnection

__all__ = [
    "LineInput",
    "Preview",
    "Promotion",
    "PromotionTerms",
    "PurchaseInput",
    "RefundLine",
    "RuleVersion",
    "archive_promotion",
    "archive_rule",
    "create_promotion",
    "create_rule",
    "earn_rules",
    "import_purchases",
    "preview_earn",
    "promotions",
    "record_purchase",
    "record_purchases",
    "reverse_purchase",
    "update_rule",
]


@dataclass(frozen=True)
class Preview:
    points: int
    detail: dict[str, Any] | None = field(default=None)


def _check(purchase: PurchaseInput) -> Basket:
    v = Validator()
    basket = purchases.check(v, purchase)
    v.raise_if_any()
    return basket


async def record_purchase(db: Database, principal: Principal, purchase: PurchaseInput) -> ledger.Outcome:
    """Earns what the rules in force at occurredAt say (see `engine`), booked by the ledger with
    the breakdown; unknown promo codes come back as userErrors next to the recorded purchase.
    Bad input raises DomainError before anything is looked up."""
    partner_id = principal.require_partner("points:earn")
    basket = _check(purchase)  # bad input raises, before anything is looked up
    partner, rules = await decisions.partner_and_rules(db, partner_id)
    tiers = await decisions.tier_set(db)
    decision, decide = decisions.decision_for(purchase, basket, partner, rules, tiers)
    outcome = await ledger.record_purchase(
        db,
        principal,
        idempotency_key=purchase.idempotency_key,
        member_number=purchase.member_number,
        order_id=purchase.order_id,
        amount=purchase.amount,
        occurred_at=purchase.occurred_at,
        decision=decision,
        decide=decide,
        request_extra=purchase.request_extra(),
    )
    if outcome.result is None:
        return outcome
    warnings = purchases.promo_code_errors(outcome.result.get("detail"))
    return ledger.Outcome(result=outcome.result, errors=[*outcome.errors, *warnings])


record_purchases = bulk.record_purchases
import_purchases = bulk.import_purchases


async def preview_earn(db: Database, principal: Principal, purchase: PurchaseInput) -> Preview:
    """What `record_purchase` would earn now, by the same engine and rules, writing nothing.
    Refuses (DomainError) what it would refuse about the purchase and the member."""
    partner_id = principal.require_partner("points:earn")
    basket = _check(purchase)
    await members.refuse_if_rate_limited(db, principal)
    partner, rules = await decisions.partner_and_rules(db, partner_id)
    if partner is None:
        raise InputError.single(UserErrorCode.PARTNER_NOT_FOUND, "the calling partner no longer exists")
    if purchase.amount.currency != partner.currency:
        raise InputError.single(
            UserErrorCode.CURRENCY_MISMATCH, f"amount.currency must be {partner.currency}", "amount.currency"
        )
    at = purchase.occurred_at or clock.now()
    terms = decisions.terms_at(partner, rules, at)
    async with sql.connection(db) as conn:
        member = await members.cached_member_at_partner(db, conn, purchase.member_number, partner_id)
        if member is None:
            member = await members.member_at_partner(conn, purchase.member_number, partner_id)
        if member is None:
            await members.note_lookup_miss(db, principal)
            raise members.member_not_found()
        # The decide path's reads, without its lock or its reservations: a preview can promise
        # points of a budget a concurrent earn then takes (docs/decisions.md).
        history, facts, limited = await decisions.locked_inputs(conn, member.member_id, partner, terms, at)
        tier = await decisions.locked_tier(conn, await decisions.tier_set(db), member.member_id)

        def run(excluded: frozenset[int]) -> Result:
            ctx = decisions.context(purchase, partner, at, facts=facts, excluded=excluded)
            return evaluate(basket, terms, history, ctx, tier)

        result = await promotion_awards.settle(conn, run, limited, promotion_awards.fits, undo=False)
    detail = purchases.document(purchase, basket, result)
    return Preview(result.points, json.loads(detail) if detail else None)


async def reverse_purchase(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    order_id: str,
    amount: Money | None,
    lines: tuple[RefundLine, ...] | None = None,
) -> ledger.Outcome:
    """A refund by amount (pro rata, as the ledger does it) or by line (exactly what those lines
    earned under the rules of the purchase: `refunds`). The refund that leaves nothing of the
    purchase to refund gives back the promo codes it used and its promotions' budget
    (`_released_on_full_refund`); a partial refund keeps both."""
    principal.require_partner("points:reverse")
    v = Validator()
    if lines is not None:
        v.check(bool(lines), "lines", UserErrorCode.INVALID, "lines, when sent, names at least one line")
        v.check(amount is None, "lines", UserErrorCode.INVALID, "send lines or amount, not both")
        seen: set[str] = set()
        for i, line in enumerate(lines):
            v.text(line.sku, f"lines[{i}].sku", max_length=purchases.MAX_KEY)
            v.check(line.sku not in seen, f"lines[{i}].sku", UserErrorCode.INVALID, "a sku named twice")
            seen.add(line.sku)
            v.check(
                0 < line.quantity <= purchases.MAX_QUANTITY,
                f"lines[{i}].quantity",
                UserErrorCode.INVALID_AMOUNT,
                f"lines[{i}].quantity must be between 1 and {purchases.MAX_QUANTITY:,}",
            )
    v.raise_if_any()
    extra = {"lines": [[line.sku, line.quantity] for line in lines]} if lines is not None else None
    by_line = refunds.decider(lines)
    outcome = await ledger.reverse_purchase(
        db,
        principal,
        idempotency_key=idempotency_key,
        order_id=order_id,
        amount=amount,
        decide=by_line,
        request_extra=extra,
        on_refunded=_released_on_full_refund,
    )
    return outcome


async def _released_on_full_refund(conn: DbConnection, refund: ledger.RefundBooked) -> None:
    """The ledger's `on_refunded` hook, in the refund's transaction: the refund that leaves nothing
    to refund gives back the purchase's promo code uses and its promotion awards (to their
    budgets; they stop counting toward per-member limits). A partial refund keeps both."""
    if refund.fully_refunded:
        await promo_codes.release(conn, partner_id=refund.partner_id, order_id=refund.order_id)
        await promotion_awards.release(conn, refund.partner_id, refund.order_id)


async def earn_rules(db: Database, principal: Principal, partner_id: int | None) -> list[RuleVersion]:
    """Each of the partner's rules as it stands now (its version in effect now, or its first
    version if that starts later), archived ones included."""
    rules = await rule_changes.partner_rules(db, principal, partner_id)
    now = clock.now()
    return [
        rules.version_at(rule_id, now) or versions[0] for rule_id, versions in sorted(rules.versions.items())
    ]


async def create_rule(
    db: Database, principal: Principal, *, partner_id: int | None, terms: dict[str, Any]
) -> RuleVersion:
    return await rule_changes.create_rule(db, principal, partner_id=partner_id, terms=terms)


async def update_rule(
    db: Database,
    principal: Principal,
    *,
    rule_id: int,
    changes: dict[str, Any],
    effective_from: datetime | None,
) -> RuleVersion:
    return await rule_changes.change_rule(
        db, principal, rule_id=rule_id, changes=changes, effective_from=effective_from
    )


async def archive_rule(
    db: Database, principal: Principal, *, rule_id: int, effective_from: datetime | None
) -> RuleVersion:
    return await rule_changes.change_rule(
        db, principal, rule_id=rule_id, changes={}, effective_from=effective_from, archive=True
    )


def promo_code_errors(detail: dict[str, Any] | None) -> list[UserError]:
    return purchases.promo_code_errors(detail)


async def create_promotion(
    db: Database, principal: Principal, *, partner_id: int | None, terms: PromotionTerms
) -> Promotion:
    """A new promotion (partnerId None by an admin: a coalition promotion)."""
    return await promotion_changes.create_promotion(db, principal, partner_id=partner_id, terms=terms)


async def archive_promotion(db: Database, principal: Principal, promotion_id: int) -> Promotion:
    return await promotion_changes.archive_promotion(db, principal, promotion_id)


async def promotions(
    db: Database, principal: Principal, *, partner_id: int | None, first: int | None, after: str | None
) -> Page[Promotion]:
    return await promotion_changes.list_promotions(
        db, principal, partner_id=partner_id, first=first, after=after
    )
