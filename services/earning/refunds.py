"""Refunds by line: what a refund of some of a purchase's lines takes back, from the document the
purchase was stored with (the points each line earned under the rules then in force), never from
today's rules.

Rounding, stated: after refunds by line, exactly floor(sum over lines of line points x refunded
quantity / quantity) points have been taken back, and the amount refunded is the lines' amounts in
the same proportion, rounded half up to the currency's minor unit; both cumulative over the
purchase's refunds, so refunding every line takes back exactly what the purchase earned and
refunds exactly its amount. A purchase is refunded either by line or by amount (pro rata, the
ledger's own rule), not both: mixing would make "what those lines earned" ambiguous.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from services.ledger import service as ledger
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.money import quantize_money


@dataclass(frozen=True)
class RefundLine:
    sku: str
    quantity: int


def decider(lines: tuple[RefundLine, ...] | None) -> ledger.DecideRefund:
    def decide(purchase: ledger.PurchaseToRefund, amount: Decimal | None) -> ledger.RefundDecision | None:
        refunded: dict[str, int] = {str(k): int(v) for k, v in (purchase.lines_refunded or {}).items()}
        stored = [line for line in (purchase.detail or {}).get("lines", []) if line.get("sku") is not None]
        if lines is None:
            if not refunded:
                return None  # by amount, pro rata: the ledger's own rule
            if amount is not None:
                raise DomainError.single(
                    UserErrorCode.INVALID,
                    "this purchase is being refunded by line: refund the rest by lines, or in full",
                    "amount",
                )
            wanted = {line["sku"]: int(line["quantity"]) - refunded.get(line["sku"], 0) for line in stored}
        else:
            if not stored:
                raise DomainError.single(
                    UserErrorCode.LINE_NOT_FOUND,
                    "this purchase was recorded without lines: refund it by amount",
                    "lines[0].sku",
                )
            if purchase.amount_reversed > 0 and not refunded:
                raise DomainError.single(
                    UserErrorCode.INVALID,
                    "this purchase is being refunded by amount: refund the rest by amount, or in full",
                    "lines",
                )
            wanted = _wanted(lines, stored, refunded)
        after = {sku: refunded.get(sku, 0) + wanted.get(sku, 0) for sku in {*refunded, *wanted}}
        taken = Fraction(0)
        amount_after = Decimal(0)
        for line in stored:
            share = Fraction(after.get(line["sku"], 0), int(line["quantity"]))
            taken += int(line["points"]) * share
            amount_after += Decimal(line["amount"]) * after.get(line["sku"], 0) / int(line["quantity"])
        return ledger.RefundDecision(
            points=math.floor(taken) - purchase.points_reversed,
            amount=quantize_money(amount_after - purchase.amount_reversed, purchase.currency),
            lines_refunded={sku: qty for sku, qty in after.items() if qty},
        )

    return decide


def _wanted(lines: tuple[RefundLine, ...], stored: list[dict], refunded: dict[str, int]) -> dict[str, int]:
    by_sku = {line["sku"]: line for line in stored}
    wanted: dict[str, int] = {}
    for i, line in enumerate(lines):
        found = by_sku.get(line.sku)
        if found is None:
            raise DomainError.single(
                UserErrorCode.LINE_NOT_FOUND,
                f"the purchase has no line with sku {line.sku!r}",
                f"lines[{i}].sku",
            )
        left = int(found["quantity"]) - refunded.get(line.sku, 0)
        if line.quantity > left:
            raise DomainError.single(
                UserErrorCode.REFUND_EXCEEDS_PURCHASE,
                f"only {left} of sku {line.sku!r} are left to refund",
                f"lines[{i}].quantity",
            )
        wanted[line.sku] = line.quantity
    return wanted
