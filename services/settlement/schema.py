"""GraphQL for settlement: admins run, finalize and pay; partners read their own statements."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from decimal import Decimal

import strawberry

from services.partners.schema import Partner, partner_loader
from services.settlement import http as settlement_http
from services.settlement import loaders, queries, service
from services.settlement.compute import Line
from services.settlement.export import ExportFormat
from services.settlement.models import LineKind, PaymentDirection, RunStatus
from services.settlement.reconciliation_schema import Reconciliation
from shared.errors import DomainError
from shared.graphql_types import Connection, GraphQLInfo, Money, Node, Points, UserError, user_errors
from shared.ids import require_global_id, to_global_id
from shared.list_sizes import list_size

strawberry.enum(RunStatus, description="DRAFT until finalized; PAID once its payments were made.")
strawberry.enum(
    LineKind,
    description="What a statement line is for: a redemption between two partners (each side"
    " books it), a fee or breakage owed to the coalition, an adjustment of a finalized period, or"
    " points spent where they were issued (INTERNAL: no money moves).",
)
strawberry.enum(
    PaymentDirection,
    description="PAY_IN: the partner pays the clearing house; PAY_OUT: the clearing house pays it.",
)


# What the cost limit expects these lists to hold (shared/list_sizes.py): a run has a statement
# per partner and the coalition's, of which a partner sees its own; a statement a line per
# counterparty each way, plus one per other kind (fees, breakage, internal, a few adjustments).
STATEMENTS_PER_RUN = list_size(fixed=1, per_partner=1, for_partner=1, one_with="partnerId")
LINES_PER_STATEMENT = list_size(fixed=len(LineKind), per_partner=2)


@strawberry.type
class PaymentInstruction:
    direction: PaymentDirection
    amount: Money


strawberry.enum(ExportFormat, description="The file formats a run's statements download in.")


@strawberry.type(description="What an ADJUSTMENT line settles late: events of a finalized period.")
class Adjustment:
    run_id: strawberry.ID = strawberry.field(description="The finalized run whose period they belong to.")
    period_start: datetime
    period_end: datetime
    kind: LineKind = strawberry.field(description="The kind the line would have had in that run.")


async def _partner(info: GraphQLInfo, partner_id: int | None) -> Partner | None:
    if partner_id is None:
        return None
    return await partner_loader(info).load(partner_id)


async def _counterparty(root: StatementLine, info: GraphQLInfo) -> Partner | None:
    return await _partner(info, root.counterparty_id)


async def _statement_partner(root: Statement, info: GraphQLInfo) -> Partner | None:
    return await _partner(info, root.partner_id)


@strawberry.type
class StatementLine:
    counterparty_id: strawberry.Private[int | None]
    counterparty: Partner | None = strawberry.field(
        resolver=_counterparty, description="Null: the coalition."
    )
    kind: LineKind
    points: Points = strawberry.field(
        description="Signed: negative when cancellations or refunds outweighed the flow in the period."
    )
    amount: Money = strawberry.field(description="Positive: receivable; negative: payable.")
    adjusts: Adjustment | None = strawberry.field(description="Set on ADJUSTMENT lines only.")


@strawberry.type
class Statement:
    partner_id: strawberry.Private[int | None]
    partner: Partner | None = strawberry.field(
        resolver=_statement_partner, description="Null: the coalition's own statement."
    )
    net: Money
    instruction: PaymentInstruction | None = strawberry.field(description="None when the net is zero.")
    lines: list[StatementLine] = strawberry.field(metadata=LINES_PER_STATEMENT)


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


def _statement(run: queries.Run, s: queries.Statement) -> Statement:
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


@strawberry.type
class SettlementRun(Node):
    status: RunStatus
    period_start: datetime
    period_end: datetime
    recorded_before: datetime = strawberry.field(
        description="Events of the period recorded from this instant on are settled by a later run."
    )
    content_hash: str
    finalized_over_open_disputes: int = strawberry.field(
        description="Reconciliation disputes still open when an admin finalized anyway."
    )
    all_statements: strawberry.Private[list[Statement]]
    _run_id: strawberry.Private[int]

    @strawberry.field(
        description="One per partner with activity in the period, and the coalition's own (partner"
        " null); a partner sees only its own. `partnerId` narrows them to that partner's statement:"
        " how an admin reads one partner's lines within the query cost limit (a whole run's lines"
        " are what the CSV/JSON export is for).",
        metadata=STATEMENTS_PER_RUN,
    )
    def statements(self, partner_id: strawberry.ID | None = None) -> list[Statement]:
        if partner_id is None:
            return self.all_statements
        wanted = require_global_id(partner_id, "Partner", "partnerId")
        return [s for s in self.all_statements if s.partner_id == wanted]

    @strawberry.field(description="Where to download the statements (same bearer token).")
    def export_url(self, format: ExportFormat = ExportFormat.CSV) -> str:
        return settlement_http.export_url(self._run_id, format.value)

    @strawberry.field(
        description="Partners' uploads for this run (a partner sees its own).",
        metadata=list_size(per_partner=1, for_partner=1),  # one per (run, partner)
    )
    async def reconciliations(self, info: GraphQLInfo) -> list[Reconciliation]:
        found = await loaders.run_reconciliations(info).load(self._run_id)
        return [Reconciliation.of(r) for r in found]

    @classmethod
    def of(cls, run: queries.Run) -> SettlementRun:
        """The GraphQL run of a stored one; partners are looked up (batched) only if asked for."""
        return cls(
            id=strawberry.ID(to_global_id("SettlementRun", run.id)),
            status=run.status,
            period_start=run.period_start,
            period_end=run.period_end,
            recorded_before=run.recorded_before,
            content_hash=run.content_hash,
            finalized_over_open_disputes=run.finalized_over_open_disputes,
            all_statements=[_statement(run, s) for s in run.statements],
            _run_id=run.id,
        )


@strawberry.input
class RunSettlementInput:
    period_start: datetime
    period_end: datetime


@strawberry.input
class SettlementRunInput:
    run_id: strawberry.ID


@strawberry.input
class FinalizeSettlementInput:
    run_id: strawberry.ID
    override_open_disputes: bool = strawberry.field(
        default=False,
        description="Finalize although reconciliation disputes are open (recorded on the run).",
    )


@strawberry.type
class SettlementPayload:
    run: SettlementRun | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _run_id(value: strawberry.ID) -> int:
    return require_global_id(value, "SettlementRun", "runId")


@strawberry.type
class SettlementQuery:
    @strawberry.field(description="One run (admins), or a partner's own statement of it (drafts too).")
    async def settlement_run(self, info: GraphQLInfo, id: strawberry.ID) -> SettlementRun | None:
        run = await loaders.runs(info).load(_run_id(id))
        return SettlementRun.of(run) if run else None

    @strawberry.field(description="All settlement runs, newest first (admins).")
    async def settlement_runs(
        self, info: GraphQLInfo, first: int | None = None, after: str | None = None
    ) -> Connection[SettlementRun]:
        info.context.principal.require_admin("admin:settlement")
        page = await queries.list_runs(info.context.db, info.context.principal, first=first, after=after)
        return Connection.of(page, SettlementRun.of)

    @strawberry.field(description="The calling partner's statements of finalized runs, newest first.")
    async def my_statements(
        self, info: GraphQLInfo, first: int | None = None, after: str | None = None
    ) -> Connection[SettlementRun]:
        info.context.principal.require_partner("settlement:read")
        page = await queries.list_runs(info.context.db, info.context.principal, first=first, after=after)
        return Connection.of(page, SettlementRun.of)


async def _payload(operation: Awaitable[queries.Run]) -> SettlementPayload:
    try:
        run = await operation
    except DomainError as exc:
        return SettlementPayload(user_errors=user_errors(exc.errors))
    return SettlementPayload(run=SettlementRun.of(run))


@strawberry.type
class SettlementMutation:
    @strawberry.mutation(description="Compute a period's statements as a DRAFT (replacing one).")
    async def run_settlement(self, info: GraphQLInfo, input: RunSettlementInput) -> SettlementPayload:
        return await _payload(
            service.run_settlement(
                info.context.db,
                info.context.principal,
                period_start=input.period_start,
                period_end=input.period_end,
            ),
        )

    @strawberry.mutation(
        description="Freeze a DRAFT run: immutable, hashed, no overlapping runs. Refused while"
        " reconciliation disputes are open unless overrideOpenDisputes is true."
    )
    async def finalize_settlement(
        self, info: GraphQLInfo, input: FinalizeSettlementInput
    ) -> SettlementPayload:
        try:
            run_id = _run_id(input.run_id)
        except DomainError as exc:
            return SettlementPayload(user_errors=user_errors(exc.errors))
        return await _payload(
            service.finalize_settlement(
                info.context.db,
                info.context.principal,
                run_id,
                override_open_disputes=input.override_open_disputes,
            ),
        )

    @strawberry.mutation(description="Record that a FINALIZED run's payments were made.")
    async def mark_settlement_paid(self, info: GraphQLInfo, input: SettlementRunInput) -> SettlementPayload:
        try:
            run_id = _run_id(input.run_id)
        except DomainError as exc:
            return SettlementPayload(user_errors=user_errors(exc.errors))
        return await _payload(service.mark_settlement_paid(info.context.db, info.context.principal, run_id))
