"""GraphQL for settlement: admins run, finalize and pay; partners read their own statements."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from services.partners import service as partners
from services.partners.schema import Partner
from services.settlement import http as settlement_http
from services.settlement import queries, reconciliation, service
from services.settlement.compute import Line
from services.settlement.export import ExportFormat
from services.settlement.models import LineKind, PaymentDirection, RunStatus
from services.settlement.reconciliation_schema import Reconciliation
from shared import sql
from shared.errors import DomainError
from shared.graphql_types import Connection, GraphQLInfo, Money, Node, Points, UserError, user_errors
from shared.ids import require_global_id, to_global_id
from shared.pagination import Page

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


@strawberry.type
class StatementLine:
    counterparty: Partner | None = strawberry.field(description="Null: the coalition.")
    kind: LineKind
    points: Points = strawberry.field(
        description="Signed: negative when cancellations or refunds outweighed the flow in the period."
    )
    amount: Money = strawberry.field(description="Positive: receivable; negative: payable.")
    adjusts: Adjustment | None = strawberry.field(description="Set on ADJUSTMENT lines only.")


@strawberry.type
class Statement:
    partner: Partner | None = strawberry.field(description="Null: the coalition's own statement.")
    net: Money
    instruction: PaymentInstruction | None = strawberry.field(description="None when the net is zero.")
    lines: list[StatementLine]


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
    statements: list[Statement]
    _run_id: strawberry.Private[int]

    @strawberry.field(description="Where to download the statements (same bearer token).")
    def export_url(self, format: ExportFormat = ExportFormat.CSV) -> str:
        return settlement_http.export_url(self._run_id, format.value)

    @strawberry.field(description="Partners' uploads for this run (a partner sees its own).")
    async def reconciliations(self, info: GraphQLInfo) -> list[Reconciliation]:
        found = await reconciliation.run_reconciliations(
            info.context.db, info.context.principal, self._run_id
        )
        return [Reconciliation.of(r) for r in found]


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


async def runs_of(info: GraphQLInfo, runs: list[queries.Run]) -> list[SettlementRun]:
    """GraphQL runs for service runs, with every partner they name fetched at once."""
    ids = {
        p
        for r in runs
        for s in r.statements
        for x in s.lines
        for p in (x.partner_id, x.counterparty_id)
        if p is not None
    }
    async with sql.connection(info.context.db) as conn:
        found = await partners.get_partners(conn, sorted(ids))
    partner = {i: Partner.of(v) for i, v in found.items()}

    def money(amount: Any, currency: str) -> Money:
        return Money(amount=amount + 0, currency=currency)

    out = []
    for r in runs:
        statements = []
        for s in r.statements:
            net = s.net
            statements.append(
                Statement(
                    partner=partner.get(s.partner_id) if s.partner_id is not None else None,
                    net=money(net, r.currency),
                    instruction=PaymentInstruction(direction=s.direction, amount=money(abs(net), r.currency))
                    if s.direction
                    else None,
                    lines=[
                        StatementLine(
                            counterparty=partner.get(x.counterparty_id) if x.counterparty_id else None,
                            kind=LineKind(x.kind),
                            points=x.points,
                            amount=money(x.amount, r.currency),
                            adjusts=_adjustment(r, x),
                        )
                        for x in s.lines
                    ],
                )
            )
        out.append(
            SettlementRun(
                id=strawberry.ID(to_global_id("SettlementRun", r.id)),
                status=RunStatus(r.status),
                period_start=r.period_start,
                period_end=r.period_end,
                recorded_before=r.recorded_before,
                content_hash=r.content_hash,
                finalized_over_open_disputes=r.finalized_over_open_disputes,
                statements=statements,
                _run_id=r.id,
            )
        )
    return out


async def _connection(info: GraphQLInfo, page: Page[queries.Run]) -> Connection[SettlementRun]:
    converted = dict(
        zip([id(r) for _, r in page.items], await runs_of(info, [r for _, r in page.items]), strict=True)
    )
    return Connection.of(page, lambda r: converted[id(r)])


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
        run = await queries.get_run(info.context.db, info.context.principal, _run_id(id))
        return (await runs_of(info, [run]))[0] if run else None

    @strawberry.field(description="All settlement runs, newest first (admins).")
    async def settlement_runs(
        self, info: GraphQLInfo, first: int | None = None, after: str | None = None
    ) -> Connection[SettlementRun]:
        info.context.principal.require_admin("admin:settlement")
        page = await queries.list_runs(info.context.db, info.context.principal, first=first, after=after)
        return await _connection(info, page)

    @strawberry.field(description="The calling partner's statements of finalized runs, newest first.")
    async def my_statements(
        self, info: GraphQLInfo, first: int | None = None, after: str | None = None
    ) -> Connection[SettlementRun]:
        info.context.principal.require_partner("settlement:read")
        page = await queries.list_runs(info.context.db, info.context.principal, first=first, after=after)
        return await _connection(info, page)


async def _payload(info: GraphQLInfo, operation: Any) -> SettlementPayload:
    try:
        run = await operation
    except DomainError as exc:
        return SettlementPayload(user_errors=user_errors(exc.errors))
    return SettlementPayload(run=(await runs_of(info, [run]))[0])


@strawberry.type
class SettlementMutation:
    @strawberry.mutation(description="Compute a period's statements as a DRAFT (replacing one).")
    async def run_settlement(self, info: GraphQLInfo, input: RunSettlementInput) -> SettlementPayload:
        return await _payload(
            info,
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
            info,
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
        return await _payload(
            info, service.mark_settlement_paid(info.context.db, info.context.principal, run_id)
        )
