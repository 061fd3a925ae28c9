"""GraphQL for a settlement run's statements: what each partner owes and is owed, line by line, and
the enums a run is read with (built from settlement's own)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from services.partners.schema import Partner, partner_loader
from services.settlement import queries
from services.settlement.compute import Line
from services.settlement.export import ExportFormat
from services.settlement.models import LineKind, PaymentDirection, RunStatus
from shared.graphql_types import GraphQLInfo, Money, Points, graphql_enum
from shared.ids import to_global_id
from shared.list_sizes import list_size

graphql_enum(
    RunStatus,
    description="DRAFT until finalized; PAID once its payments were made.",
    values={
        RunStatus.DRAFT: "Provisional: running the period again replaces it.",
        RunStatus.FINALIZED: "Immutable and hashed: what is to be paid.",
        RunStatus.PAID: "Its payments were made.",
    },
)
graphql_enum(
    LineKind,
    description="What a statement line is for: a redemption between two partners (each side"
    " books it), a fee or breakage owed to the coalition, an adjustment of a finalized period, or"
    " points spent where they were issued (INTERNAL: no money moves).",
    values={
        LineKind.REDEMPTION_RECEIVABLE: "The counterparty's points spent with this partner, which the"
        " counterparty (their issuer; null: the coalition, for the points it issued) pays for at this"
        " partner's redeem price.",
        LineKind.REDEMPTION_PAYABLE: "This partner's points spent with the counterparty, which this"
        " partner (on the coalition's statement: the coalition, for the points it issued) pays for at"
        " the counterparty's redeem price.",
        LineKind.ISSUE_FEE: "The coalition's fee per point issued (net of points refunded).",
        LineKind.BREAKAGE: "The coalition's share of the liability released by expired points.",
        LineKind.ADJUSTMENT: "Events of a finalized period recorded after its run: see adjusts.",
        LineKind.INTERNAL: "Points spent where they were issued: shown, no money moves.",
    },
)
graphql_enum(
    PaymentDirection,
    description="Which way a partner's net amount goes.",
    values={
        PaymentDirection.PAY_IN: "The partner pays the clearing house.",
        PaymentDirection.PAY_OUT: "The clearing house pays the partner.",
    },
)

# What the cost limit expects these lists to hold (shared/list_sizes.py): a run has a statement
# per partner and the coalition's, of which a partner sees its own; a statement a line per
# counterparty each way, plus one per other kind (fees, breakage, internal, a few adjustments).
LINES_PER_STATEMENT = list_size(fixed=len(LineKind), per_partner=2)


@strawberry.type(description="The one payment that settles a partner's statement.")
class PaymentInstruction:
    direction: PaymentDirection = strawberry.field(description="Who pays whom.")
    amount: Money = strawberry.field(description="How much: the net, as a positive amount.")


graphql_enum(
    ExportFormat,
    description="The file formats a run's statements download in.",
    values={
        ExportFormat.CSV: "One row per statement line, for spreadsheets and accounting imports.",
        ExportFormat.JSON: "The run with its statements and lines, as one JSON document.",
    },
)


@strawberry.type(description="What an ADJUSTMENT line settles late: events of a finalized period.")
class Adjustment:
    run_id: strawberry.ID = strawberry.field(description="The finalized run whose period they belong to.")
    period_start: datetime = strawberry.field(description="Start of that run's period (inclusive).")
    period_end: datetime = strawberry.field(description="End of that run's period (exclusive).")
    kind: LineKind = strawberry.field(description="The kind the line would have had in that run.")


async def _partner(info: GraphQLInfo, partner_id: int | None) -> Partner | None:
    if partner_id is None:
        return None
    return await partner_loader(info).load(partner_id)


async def _counterparty(root: StatementLine, info: GraphQLInfo) -> Partner | None:
    return await _partner(info, root.counterparty_id)


async def _statement_partner(root: Statement, info: GraphQLInfo) -> Partner | None:
    return await _partner(info, root.partner_id)


@strawberry.type(description="One obligation on a statement, in the settlement currency.")
class StatementLine:
    counterparty_id: strawberry.Private[int | None]
    counterparty: Partner | None = strawberry.field(
        resolver=_counterparty, description="Null: the coalition."
    )
    kind: LineKind = strawberry.field(description="What the line is for.")
    points: Points = strawberry.field(
        description="Signed: negative when cancellations or refunds outweighed the flow in the period."
    )
    amount: Money = strawberry.field(description="Positive: receivable; negative: payable.")
    adjusts: Adjustment | None = strawberry.field(description="Set on ADJUSTMENT lines only.")


@strawberry.type(description="What one partner (or the coalition) owes and is owed for a run's period.")
class Statement:
    partner_id: strawberry.Private[int | None]
    partner: Partner | None = strawberry.field(
        resolver=_statement_partner, description="Null: the coalition's own statement."
    )
    net: Money = strawberry.field(
        description="The sum of its lines: positive, the clearing house pays; negative, it is paid."
        " The nets of a run, the coalition's included, add up to exactly zero."
    )
    instruction: PaymentInstruction | None = strawberry.field(description="Null when the net is zero.")
    lines: list[StatementLine] = strawberry.field(
        description="Its lines, rounded per payer so they add up to the net to the cent.",
        metadata=LINES_PER_STATEMENT,
    )


def _money(amount: Decimal, currency: str) -> Money:
    return Money(amount=amount + 0, currency=currency)


def _adjustment(run: queries.Run, line: Line) -> Adjustment | None:
    if line.original_run_id is None or line.adjusted_kind is None:
        return None
    start, end = run.original_periods[line.original_run_id]
    return Adjustment(
        run_id=strawberry.ID(to_global_id("SettlementRun", line.original_run_id)),
        period_start=start,
        period_end=end,
        kind=LineKind(line.adjusted_kind),
    )


def statement_of(run: queries.Run, s: queries.Statement) -> Statement:
    net = s.net
    return Statement(
        partner_id=s.partner_id,
        net=_money(net, run.currency),
        instruction=PaymentInstruction(direction=s.direction, amount=_money(abs(net), run.currency))
        if s.direction
        else None,
        lines=[
            StatementLine(
                counterparty_id=x.counterparty_id,
                kind=LineKind(x.kind),
                points=x.points,
                amount=_money(x.amount, run.currency),
                adjusts=_adjustment(run, x),
            )
            for x in s.lines
        ],
    )
