"""A purchase as the earning service receives it: its lines, checked, and the document the ledger
stores with it (`detail`: lines with the points each earned, the breakdown, channel, promo codes).

A purchase sent without lines is one line of its amount. With lines, `amount` must be exactly the
sum of the lines' amounts (AMOUNT_MISMATCH), and each line's SKU appears once (a refund names a
line by it). A plain purchase (no lines, promo codes or channel, and no rule that changed anything)
stores no document at all: its breakdown is its points at the base rate, read back as such.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.earning.engine import Basket, Line, Result
from services.earning.models import Channel
from services.earning.promo_codes import ClaimResult, CodeStatus
from services.ledger import service as ledger
from shared.error_codes import UserErrorCode
from shared.errors import UserError, Validator
from shared.money import Money

MAX_LINES = 1000
MAX_QUANTITY = 1_000_000
MAX_KEY = 200
MAX_CODES = 10
MAX_CODE = 64
DOCUMENT_VERSION = 1


@dataclass(frozen=True)
class LineInput:
    sku: str
    category: str | None = None
    quantity: int = 1
    unit_price: Money | None = None
    amount: Money | None = None


@dataclass(frozen=True)
class PurchaseInput:
    idempotency_key: str
    member_number: str
    order_id: str
    amount: Money
    occurred_at: datetime | None = None
    lines: tuple[LineInput, ...] | None = None
    promo_codes: tuple[str, ...] | None = None
    channel: Channel | None = None
    # Promotion ids the purchase's valid promo codes unlock (the promo-code service fills it);
    # a requires_code promotion applies only when unlocked.
    unlocked: frozenset[int] = frozenset()

    @property
    def plain(self) -> bool:
        return self.lines is None and not self.promo_codes and self.channel is None

    def request_extra(self) -> dict[str, Any]:
        """What the idempotency key names beyond a plain purchase's fields (nothing for one)."""
        extra: dict[str, Any] = {}
        if self.lines is not None:
            extra["lines"] = [
                [
                    line.sku,
                    line.category,
                    line.quantity,
                    str(line.unit_price.amount) if line.unit_price else None,
                    str(line.amount.amount) if line.amount else None,
                ]
                for line in self.lines
            ]
        if self.promo_codes:
            extra["promo_codes"] = list(self.promo_codes)
        if self.channel is not None:
            extra["channel"] = self.channel.value
        return extra


def check(v: Validator, purchase: PurchaseInput) -> Basket:
    """Every check of the purchase's own fields; the basket the engine evaluates."""
    ledger.check_purchase(
        v,
        idempotency_key=purchase.idempotency_key,
        member_number=purchase.member_number,
        order_id=purchase.order_id,
        amount=purchase.amount,
        occurred_at=purchase.occurred_at,
    )
    for i, code in enumerate(purchase.promo_codes or ()):
        v.text(code, f"promoCodes[{i}]", max_length=MAX_CODE)
    if purchase.promo_codes is not None:
        v.check(
            len(purchase.promo_codes) <= MAX_CODES,
            "promoCodes",
            UserErrorCode.INVALID,
            f"at most {MAX_CODES} promo codes",
        )
    if purchase.lines is None:
        return Basket.single(purchase.amount.amount)
    if not v.check(
        0 < len(purchase.lines) <= MAX_LINES,
        "lines",
        UserErrorCode.INVALID,
        f"lines, when sent, holds 1 to {MAX_LINES} lines",
    ):
        return Basket.single(purchase.amount.amount)
    lines, seen, complete = [], set(), True
    for i, line in enumerate(purchase.lines):
        at = f"lines[{i}]"
        v.text(line.sku, f"{at}.sku", max_length=MAX_KEY)
        if line.category is not None:
            v.text(line.category, f"{at}.category", max_length=MAX_KEY)
        v.check(line.sku not in seen, f"{at}.sku", UserErrorCode.INVALID, f"sku {line.sku!r} is on two lines")
        seen.add(line.sku)
        v.check(
            0 < line.quantity <= MAX_QUANTITY,
            f"{at}.quantity",
            UserErrorCode.INVALID_AMOUNT,
            f"{at}.quantity must be between 1 and {MAX_QUANTITY:,}",
        )
        amount = _line_amount(v, purchase.amount.currency, line, at)
        if amount is None:
            complete = False
            continue
        lines.append(Line(line.sku, line.category, line.quantity, amount))
    if complete:
        total = sum((line.amount for line in lines), Decimal(0))
        v.check(
            total == purchase.amount.amount,
            "amount",
            UserErrorCode.AMOUNT_MISMATCH,
            f"amount {purchase.amount.amount} is not the sum of the lines' amounts, {total}",
        )
    return Basket(tuple(lines), purchase.amount.amount)


def _line_amount(v: Validator, currency: str, line: LineInput, at: str) -> Decimal | None:
    """The line's amount, or its unit price times its quantity when the amount is left out."""
    given, field = (line.amount, f"{at}.amount") if line.amount else (line.unit_price, f"{at}.unitPrice")
    if given is None:
        v.add(f"{at}.amount", UserErrorCode.REQUIRED, f"{at} needs an amount (or a unitPrice)")
        return None
    if not ledger.check_money(v, given, field, required_currency=None):
        return None
    if not v.check(
        given.currency == currency,
        f"{field}.currency",
        UserErrorCode.CURRENCY_MISMATCH,
        f"{field}.currency must be the purchase's, {currency}",
    ):
        return None
    if line.amount is None:
        return given.amount * line.quantity
    return given.amount


PROMO_CODE_ERRORS: dict[str, tuple[UserErrorCode, str]] = {
    CodeStatus.INVALID: (
        UserErrorCode.PROMO_CODE_INVALID,
        "no promotion of yours has the code {code!r} (check it with the customer: a mistyped code"
        " fails its check character); the purchase earned its points without it",
    ),
    CodeStatus.EXPIRED: (
        UserErrorCode.PROMO_CODE_EXPIRED,
        "the code {code!r} (or its promotion) had expired at the purchase's occurredAt; the purchase"
        " earned its points without it",
    ),
    CodeStatus.USED: (
        UserErrorCode.PROMO_CODE_USED,
        "the code {code!r} has been used as often as it may be (by anyone, or by this member), or it"
        " is named twice; the purchase earned its points without it",
    ),
}


def promo_code_errors(detail: dict[str, Any] | None) -> list[UserError]:
    """The promo codes that did nothing, as userErrors next to the recorded purchase, read from
    its stored document (so an idempotent replay repeats them exactly, consuming nothing)."""
    errors = []
    for i, c in enumerate((detail or {}).get("promo_codes") or []):
        found = PROMO_CODE_ERRORS.get(c.get("status"))
        if found is not None:
            code, message = found
            errors.append(UserError(code, f"promoCodes[{i}]", message.format(code=c["code"])))
    return errors


def promo_code_entries(purchase: PurchaseInput, claimed: ClaimResult | None) -> list[dict[str, Any]]:
    """`[{code, status, promotion}]` for the document; without a claim (a preview, which uses no
    code) every code is reported as not checked."""
    if claimed is None:
        return [
            {"code": code, "status": "UNCHECKED", "promotion": None} for code in purchase.promo_codes or ()
        ]
    return [{"code": o.code, "status": o.status.value, "promotion": o.promotion_id} for o in claimed.outcomes]


def document(
    purchase: PurchaseInput, basket: Basket, result: Result, claimed: ClaimResult | None = None
) -> str | None:
    """The JSON the ledger stores with the purchase; None for a plain purchase at the base rate.
    `claimed`: what each promo code did (`promo_codes.claim`, run under the member's lock)."""
    if purchase.plain and all(
        item.rule is None and item.promotion is None and item.tier is None for item in result.items
    ):
        return None
    doc: dict[str, Any] = {
        "v": DOCUMENT_VERSION,
        "lines": [
            {
                "sku": line.sku,
                "category": line.category,
                "quantity": line.quantity,
                "amount": str(line.amount),
                "points": points,
            }
            for line, points in zip(basket.lines, result.line_points, strict=True)
        ],
        "items": [
            {
                "rule": {"id": item.rule.rule_id, "version": item.rule.version_id, "name": item.rule.name}
                if item.rule
                else None,
                "promotion": {
                    "id": item.promotion.id,
                    "name": item.promotion.name,
                    "coalition": item.promotion.coalition,
                }
                if item.promotion
                else None,
                **({"tier": {"id": item.tier.id, "name": item.tier.name}} if item.tier else {}),
                "lines": list(item.lines),
                "points": item.points,
            }
            for item in result.items
        ],
    }
    if result.coalition_points:
        doc["coalition_points"] = result.coalition_points
    if purchase.channel is not None:
        doc["channel"] = purchase.channel.value
    if purchase.promo_codes:
        doc["promo_codes"] = promo_code_entries(purchase, claimed)
    return json.dumps(doc)
