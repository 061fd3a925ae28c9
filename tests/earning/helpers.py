"""Building earn rules and purchases with lines through the earning service's own functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.earning import service as earning
from services.earning.purchases import LineInput
from shared.database import Database
from shared.money import Money
from tests.factories import SeededPartner


async def rule(db: Database, partner: SeededPartner, name: str = "rule", **terms: Any) -> earning.RuleVersion:
    for key in ("multiplier", "points_per_unit", "min_spend"):
        if isinstance(terms.get(key), str):
            terms[key] = Decimal(terms[key])
    return await earning.create_rule(db, partner.principal, partner_id=None, terms={"name": name, **terms})


def line(sku: str, amount: str, *, category: str | None = None, quantity: int = 1) -> LineInput:
    return LineInput(sku=sku, category=category, quantity=quantity, amount=Money(Decimal(amount), "EUR"))


def total(*lines: LineInput) -> str:
    return str(sum((ln.amount.amount for ln in lines if ln.amount), Decimal(0)))


def items(outcome: Any) -> list[tuple[str | None, int]]:
    """(rule name or None for the base rate, points) of a recorded purchase's breakdown."""
    detail = outcome.result["detail"]
    if detail is None:
        return [(None, outcome.result["points"])]
    return [((i["rule"] or {}).get("name"), i["points"]) for i in detail["items"]]


async def promo(db: Database, partner: SeededPartner, name: str = "promo", **terms: Any) -> earning.Promotion:
    """A promotion of the partner's, live from a minute ago unless starts_at says otherwise."""
    terms.setdefault("starts_at", datetime.now(UTC) - timedelta(minutes=1))
    return await earning.create_promotion(
        db, partner.principal, partner_id=None, terms=earning.PromotionTerms(name=name, **terms)
    )


def promo_items(outcome: Any) -> list[tuple[str | None, int]]:
    """(promotion name, or rule name, or None for the base rate, points) of a breakdown."""
    detail = outcome.result["detail"]
    if detail is None:
        return [(None, outcome.result["points"])]
    return [
        ((i["promotion"] or {}).get("name") or (i["rule"] or {}).get("name"), i["points"])
        for i in detail["items"]
    ]
