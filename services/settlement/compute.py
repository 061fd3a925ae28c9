"""From the ledger's facts to money owed: one aggregate query, then exact rounding and netting.

Every movement of points in the period is priced at the contract in force at its instant (a
redemption and its cancellation at the price the redemption was made at), summed per
(payer, payee, kind) in SQL, then rounded to minor units with the largest-remainder rule per
payer. Each obligation is booked once on the payer's statement and once, opposite, on the
payee's (the coalition is the payee of fees and breakage), so the nets sum to exactly zero.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from services.settlement.models import LineKind
from shared.money import minor_units
from shared.sql import Connection, Sql

# Settlement reads the ledger's facts and the partners' contracts in one set-based statement:
# the issue asks for SQL aggregates over millions of rows, which no service-to-service call can
# give. It only reads; docs/decisions.md records the exception.
OBLIGATIONS = Sql(
    """
WITH pc AS (
  SELECT partner_id, redeem_price, issue_price, issue_fee_per_point, breakage_share,
         effective_from,
         lead(effective_from, 1, 'infinity') OVER (PARTITION BY partner_id ORDER BY effective_from)
           AS effective_to
  FROM partner_contracts
)
SELECT 'REDEMPTION' AS kind, c.issuing_partner_id AS payer, c.counterparty_partner_id AS payee,
       SUM(c.points) AS points,
       SUM(c.points * COALESCE(r1.redeem_price, r2.redeem_price, pc.redeem_price)) AS amount
FROM lot_consumptions c
JOIN pc ON pc.partner_id = c.counterparty_partner_id
       AND c.occurred_at >= pc.effective_from AND c.occurred_at < pc.effective_to
LEFT JOIN redemptions r1 ON r1.entry_id = c.entry_id
LEFT JOIN redemptions r2 ON r2.cancel_entry_id = c.entry_id
WHERE c.kind IN ('REDEMPTION', 'CLAWBACK', 'DEBT_REPAYMENT')
  AND c.occurred_at >= :start AND c.occurred_at < :end
GROUP BY 2, 3
UNION ALL
SELECT 'ISSUE_FEE', e.partner_id, NULL, SUM(e.points), SUM(e.points * pc.issue_fee_per_point)
FROM journal_entries e
JOIN pc ON pc.partner_id = e.partner_id
       AND e.occurred_at >= pc.effective_from AND e.occurred_at < pc.effective_to
WHERE e.kind IN ('EARN', 'REVERSE') AND e.occurred_at >= :start AND e.occurred_at < :end
GROUP BY 2
UNION ALL
SELECT 'BREAKAGE', c.issuing_partner_id, NULL, SUM(c.points),
       SUM(c.points * pc.issue_price * pc.breakage_share)
FROM lot_consumptions c
JOIN pc ON pc.partner_id = c.issuing_partner_id
       AND c.occurred_at >= pc.effective_from AND c.occurred_at < pc.effective_to
WHERE c.kind = 'EXPIRY' AND c.occurred_at >= :start AND c.occurred_at < :end
GROUP BY 2
"""
)


@dataclass(frozen=True)
class Obligation:
    kind: str  # REDEMPTION, ISSUE_FEE, BREAKAGE
    payer: int | None  # None: the coalition
    payee: int | None
    points: int
    exact: Decimal
    amount: Decimal = Decimal(0)  # rounded to minor units


@dataclass(frozen=True)
class Line:
    partner_id: int | None  # whose statement; None: the coalition's
    counterparty_id: int | None
    kind: str
    points: int
    amount: Decimal  # positive: receivable; negative: payable


def allocate(obligations: list[Obligation], currency: str) -> list[Obligation]:
    """Rounds each obligation to minor units so that, per payer, the rounded amounts add up to
    the payer's exact total rounded once (largest remainder); no line moves by a unit or more."""
    unit = Decimal(1).scaleb(-minor_units(currency))
    by_payer: dict[int | None, list[Obligation]] = defaultdict(list)
    for o in obligations:
        by_payer[o.payer].append(o)
    rounded: list[Obligation] = []
    for payer in sorted(by_payer, key=lambda p: (p is None, p or 0)):
        group = sorted(by_payer[payer], key=lambda o: (o.kind, o.payee is None, o.payee or 0))
        floors = [o.exact.quantize(unit, rounding=ROUND_DOWN) for o in group]
        target = sum((o.exact for o in group), Decimal(0)).quantize(unit, rounding=ROUND_HALF_UP)
        spare = int(((target - sum(floors, Decimal(0))) / unit).to_integral_value())
        order = sorted(range(len(group)), key=lambda i: (-(group[i].exact - floors[i]), i))
        for rank, i in enumerate(order):
            extra = unit if rank < spare else Decimal(0)
            o = group[i]
            rounded.append(Obligation(o.kind, o.payer, o.payee, o.points, o.exact, floors[i] + extra))
    return rounded


def statement_lines(obligations: list[Obligation]) -> list[Line]:
    lines: list[Line] = []
    for o in obligations:
        if o.kind == "REDEMPTION" and o.payer == o.payee:
            lines.append(Line(o.payer, o.payee, LineKind.INTERNAL, o.points, Decimal(0)))
        elif o.kind == "REDEMPTION":
            lines.append(Line(o.payer, o.payee, LineKind.REDEMPTION_PAYABLE, o.points, -o.amount))
            lines.append(Line(o.payee, o.payer, LineKind.REDEMPTION_RECEIVABLE, o.points, o.amount))
        else:  # fees and breakage: between a partner and the coalition, either way
            partner = o.payer if o.payer is not None else o.payee
            sign = -1 if o.payer == partner else 1
            lines.append(Line(partner, None, o.kind, o.points, sign * o.amount))
            lines.append(Line(None, partner, o.kind, o.points, -sign * o.amount))
    return lines


async def compute(conn: Connection, start: datetime, end: datetime, currency: str) -> list[Line]:
    rows = await OBLIGATIONS.fetch(conn, start=start, end=end)
    obligations = []
    for r in rows:
        exact, points, payer, payee = Decimal(r["amount"]), int(r["points"]), r["payer"], r["payee"]
        if exact < 0:  # more cancelled or refunded than spent or issued: the flow reverses
            exact, points, payer, payee = -exact, -points, payee, payer
        if points == 0 and exact == 0:
            continue
        obligations.append(Obligation(r["kind"], payer, payee, points, exact))
    return statement_lines(allocate(obligations, currency))
