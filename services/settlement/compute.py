"""From the ledger's facts to money owed: one aggregate query, then exact rounding and netting.

Every movement of points in the period is priced at the contract in force at its instant (a
redemption and its cancellation at the price the redemption was made at), summed per
(payer, payee, kind) in SQL, then rounded to minor units with the largest-remainder rule per
payer. Each obligation is booked once on the payer's statement and once, opposite, on the
payee's (the coalition is the payee of fees and breakage), so the nets sum to exactly zero.

Lines keep the direction of the flow of points (issuer -> redeemer, partner -> coalition) and
carry signed points and money: a period whose cancellations outweigh its redemptions shows a
negative payable, so the matrix's points always add up to the points consumed.
Events recorded after a finalized run read its period are settled by a later run as ADJUSTMENT
lines naming that run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from asyncpg import Record

from services.partners import coalition
from services.settlement.models import LineKind
from shared.money import minor_units
from shared.sql import DbConnection, Sql

# Settlement reads the ledger's facts and the partners' contracts through the read-only views they
# publish (services/ledger/views.py, services/partners/views.py), never their tables: the issue
# asks for SQL aggregates over millions of rows, which no per-call function can give. The views
# are simple, so PostgreSQL inlines them and drops the joins of columns a statement does not read.
#
# Both statements below share the pricing; they differ in how they find the ledger entries they
# settle (`e`, each tagged with the finalized run it adjusts, or NULL) and their movements (`c`).
PRICED = """
pc AS (
  SELECT partner_id, redeem_price, issue_price, issue_fee_per_point, breakage_share,
         effective_from, effective_to
  FROM partner_contract_terms
)
SELECT 'REDEMPTION' AS kind, c.run, c.issuing_partner_id AS payer, c.counterparty_partner_id AS payee,
       SUM(c.points) AS points,
       SUM(c.points * COALESCE(c.redeem_price, pc.redeem_price)) AS amount
FROM c
JOIN pc ON pc.partner_id = c.counterparty_partner_id
       AND c.occurred_at >= pc.effective_from AND c.occurred_at < pc.effective_to
WHERE c.kind IN ('REDEMPTION', 'CLAWBACK', 'DEBT_REPAYMENT')
GROUP BY 2, 3, 4
UNION ALL
SELECT 'ISSUE_FEE', e.run, e.partner_id, NULL, SUM(e.points - e.coalition_points),
       SUM((e.points - e.coalition_points) * pc.issue_fee_per_point)
FROM e
JOIN pc ON pc.partner_id = e.partner_id
       AND e.occurred_at >= pc.effective_from AND e.occurred_at < pc.effective_to
WHERE e.kind IN ('EARN', 'REVERSE', 'ACTIVITY')  -- a partner's activity points are issued points too
GROUP BY 2, 3
UNION ALL
SELECT 'BREAKAGE', c.run, c.issuing_partner_id, NULL, SUM(c.points),
       SUM(c.points * pc.issue_price * pc.breakage_share)
FROM c
JOIN pc ON pc.partner_id = c.issuing_partner_id
       AND c.occurred_at >= pc.effective_from AND c.occurred_at < pc.effective_to
WHERE c.kind IN ('EXPIRY', 'ERASURE')  -- an erased member's forfeited points release like expiry
GROUP BY 2, 3
"""
# What `c` carries of a movement (the pricing reads no more, so the view's other joins go).
MOVEMENT = (
    "m.entry_id, m.kind, m.points, m.issuing_partner_id, m.counterparty_partner_id, m.occurred_at,"
    " m.redeem_price"
)

# The period itself: every entry that happened in it and was recorded before the cutoff. The few
# entries recorded since the cutoff are found by the BRIN index and their movements left out
# (an anti-join), which is far cheaper than joining every movement to its entry.
OBLIGATIONS = Sql(
    f"""
WITH recent AS MATERIALIZED (SELECT id FROM ledger_entries_recorded WHERE recorded_at >= :cutoff),
e AS NOT MATERIALIZED (
  SELECT CAST(NULL AS bigint) AS run, id, kind, partner_id, points, coalition_points, occurred_at
  FROM ledger_entries_recorded
  WHERE occurred_at >= :start AND occurred_at < :end AND recorded_at < :cutoff
),
c AS NOT MATERIALIZED (
  SELECT CAST(NULL AS bigint) AS run, {MOVEMENT} FROM ledger_movements m
  WHERE m.occurred_at >= :start AND m.occurred_at < :end
    AND NOT EXISTS (SELECT 1 FROM recent WHERE recent.id = m.entry_id)
),
"""
    + PRICED
)

# Late arrivals: entries recorded since a finalized run's watermark (`after`) whose instant
# falls in that run's period. Found by recording time (BRIN), then their movements by entry.
LATE_OBLIGATIONS = Sql(
    f"""
WITH w AS (
  SELECT * FROM unnest(CAST(:runs AS bigint[]), CAST(:starts AS timestamptz[]),
                       CAST(:ends AS timestamptz[]), CAST(:afters AS timestamptz[]))
    AS w(run, lo, hi, after)
),
e AS MATERIALIZED (
  SELECT w.run, je.id, je.kind, je.partner_id, je.points, je.coalition_points, je.occurred_at
  FROM ledger_entries_recorded je
  JOIN w ON je.occurred_at >= w.lo AND je.occurred_at < w.hi AND je.recorded_at >= w.after
  WHERE je.recorded_at >= :min_after AND je.recorded_at < :cutoff
),
c AS (SELECT e.run, {MOVEMENT} FROM e JOIN ledger_movements m ON m.entry_id = e.id),
"""
    + PRICED
)


@dataclass(frozen=True)
class Window:
    """A finalized run's period, and the recording instant from which its events are late."""

    run_id: int
    start: datetime
    end: datetime
    after: datetime


@dataclass(frozen=True)
class Obligation:
    """What `payer` owes `payee` for one kind of flow, signed: negative when the period's
    cancellations or refunds outweigh what it spent or issued (the money then flows back)."""

    kind: str  # REDEMPTION (payer: issuer, payee: redeemer), ISSUE_FEE, BREAKAGE
    payer: int | None  # None: the coalition
    payee: int | None
    points: int
    exact: Decimal
    amount: Decimal = Decimal(0)  # rounded to minor units
    original_run: int | None = None  # set for a late arrival: the finalized run it adjusts


@dataclass(frozen=True)
class Line:
    partner_id: int | None  # whose statement; None: the coalition's
    counterparty_id: int | None
    kind: str
    points: int
    amount: Decimal  # positive: receivable; negative: payable
    original_run_id: int | None = None  # ADJUSTMENT only
    adjusted_kind: str | None = None  # ADJUSTMENT only: the kind it would have had


def allocate(obligations: list[Obligation], currency: str) -> list[Obligation]:
    """Rounds each obligation to minor units so that, per payer, the rounded amounts add up to
    the payer's exact total rounded once (largest remainder); no line moves by a unit or more.
    Floors are taken towards minus infinity, so signed amounts round the same way."""
    unit = Decimal(1).scaleb(-minor_units(currency))
    by_payer: dict[int | None, list[Obligation]] = defaultdict(list)
    for o in obligations:
        by_payer[o.payer].append(o)
    rounded: list[Obligation] = []
    for payer in sorted(by_payer, key=lambda p: (p is None, p or 0)):
        group = sorted(
            by_payer[payer],
            key=lambda o: (o.original_run or 0, o.kind, o.payee is None, o.payee or 0),
        )
        floors = [o.exact.quantize(unit, rounding=ROUND_FLOOR) for o in group]
        target = sum((o.exact for o in group), Decimal(0)).quantize(unit, rounding=ROUND_HALF_UP)
        spare = int(((target - sum(floors, Decimal(0))) / unit).to_integral_value())
        order = sorted(range(len(group)), key=lambda i: (-(group[i].exact - floors[i]), i))
        for rank, i in enumerate(order):
            extra = unit if rank < spare else Decimal(0)
            rounded.append(replace(group[i], amount=floors[i] + extra))
    return rounded


def _line(partner: int | None, counterparty: int | None, kind: str, o: Obligation, amount: Decimal) -> Line:
    if o.original_run is None:
        return Line(partner, counterparty, kind, o.points, amount)
    return Line(partner, counterparty, LineKind.ADJUSTMENT, o.points, amount, o.original_run, kind)


def statement_lines(obligations: list[Obligation]) -> list[Line]:
    """Each obligation twice, opposite: on the payer's statement and on the payee's."""
    lines: list[Line] = []
    for o in obligations:
        if o.kind == "REDEMPTION" and o.payer == o.payee:
            lines.append(_line(o.payer, o.payee, LineKind.INTERNAL, o, Decimal(0)))
        elif o.kind == "REDEMPTION":
            lines.append(_line(o.payer, o.payee, LineKind.REDEMPTION_PAYABLE, o, -o.amount))
            lines.append(_line(o.payee, o.payer, LineKind.REDEMPTION_RECEIVABLE, o, o.amount))
        else:  # fees and breakage: the partner owes the coalition (or, negative, the reverse)
            lines.append(_line(o.payer, None, o.kind, o, -o.amount))
            lines.append(_line(None, o.payer, o.kind, o, o.amount))
    return lines


def _obligations(rows: list[Record], coalition_issuer: int | None) -> list[Obligation]:
    """Points the coalition issued (its partners row) are the coalition's to pay for: their
    payer is the coalition itself (None), the clearing house every net already includes."""

    def who(partner_id: int | None) -> int | None:
        return None if partner_id is not None and partner_id == coalition_issuer else partner_id

    return [
        Obligation(
            r["kind"],
            who(r["payer"]),
            who(r["payee"]),
            int(r["points"]),
            Decimal(r["amount"]),
            original_run=r["run"],
        )
        for r in rows
        if r["points"] != 0 or r["amount"] != 0
    ]


async def compute(
    conn: DbConnection,
    start: datetime,
    end: datetime,
    currency: str,
    cutoff: datetime,
    late: list[Window],
) -> list[Line]:
    """The run's lines: the period's own events recorded before `cutoff`, and, as ADJUSTMENT
    lines, each finalized period's events recorded since its window opened."""
    # The period's statement is an analytic scan of every consumption in it: hash joins are always
    # right, and a stale row estimate (a big load since the last ANALYZE) must not turn them into
    # nested loops over the contracts. The late-arrival statement, which looks up few rows by key,
    # keeps the planner's choice.
    await conn.execute("SET LOCAL enable_nestloop = off")
    rows = list(await OBLIGATIONS.fetch(conn, start=start, end=end, cutoff=cutoff))
    await conn.execute("SET LOCAL enable_nestloop = on")
    if late:
        rows += await LATE_OBLIGATIONS.fetch(
            conn,
            runs=[w.run_id for w in late],
            starts=[w.start for w in late],
            ends=[w.end for w in late],
            afters=[w.after for w in late],
            min_after=min(w.after for w in late),
            cutoff=cutoff,
        )
    coalition_issuer = await coalition.find_coalition_issuer_id(conn)
    return statement_lines(allocate(_obligations(rows, coalition_issuer), currency))
