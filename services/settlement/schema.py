"""GraphQL for settlement: admins run, finalize and pay; partners read their own statements."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated

import strawberry

from services.settlement import http as settlement_http
from services.settlement import loaders, queries, service
from services.settlement.export import ExportFormat
from services.settlement.models import RunStatus
from services.settlement.reconciliation_schema import Reconciliation
from services.settlement.statement_schema import Statement, statement_of
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import (
    After,
    Connection,
    First,
    GraphQLInfo,
    Node,
    UserError,
    user_errors,
)
from shared.ids import require_global_id, to_global_id
from shared.list_sizes import list_size
from shared.operations import INPUT, PAGE_CODES, Access, admin, field, mutation, partner, partner_or_admin

# What the cost limit expects a run's statements to be (shared/list_sizes.py): one per partner and
# the coalition's, of which a partner sees its own (statement_schema.py sizes a statement's lines).
STATEMENTS_PER_RUN = list_size(fixed=1, per_partner=1, for_partner=1, one_with="partnerId")


@strawberry.type(
    description="The settlement of a period [periodStart, periodEnd): every partner's statement."
)
class SettlementRun(Node):
    status: RunStatus = strawberry.field(description="DRAFT, FINALIZED or PAID.")
    period_start: datetime = strawberry.field(description="Start of the period (inclusive).")
    period_end: datetime = strawberry.field(description="End of the period (exclusive).")
    recorded_before: datetime = strawberry.field(
        description="Events of the period recorded from this instant on are settled by a later run."
    )
    content_hash: str = strawberry.field(
        description="SHA-256 (hex) of the run's lines, checked again when it is finalized and paid."
    )
    finalized_over_open_disputes: int = strawberry.field(
        description="Reconciliation disputes still open when an admin finalized anyway."
    )
    all_statements: strawberry.Private[list[Statement]]
    _run_id: strawberry.Private[int]

    @field(
        "One per partner with activity in the period, and the coalition's own (partner null); a"
        " partner sees only its own. `partnerId` narrows them to that partner's statement: how an"
        " admin reads one partner's lines within the query cost limit (a whole run's lines are what"
        " the CSV/JSON export is for).",
        access=Access("whoever may read the run (see settlementRun)"),
        codes=(UserErrorCode.INVALID_ID,),
        metadata=STATEMENTS_PER_RUN,
    )
    def statements(
        self,
        partner_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this Partner's (global ID).")
        ] = None,
    ) -> list[Statement]:
        if partner_id is None:
            return self.all_statements
        wanted = require_global_id(partner_id, "Partner", "partnerId")
        return [s for s in self.all_statements if s.partner_id == wanted]

    @strawberry.field(description="Where to download the statements (same bearer token).")
    def export_url(
        self,
        format: Annotated[
            ExportFormat, strawberry.argument(description="The file's format.")
        ] = ExportFormat.CSV,
    ) -> str:
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
            all_statements=[statement_of(run, s) for s in run.statements],
            _run_id=run.id,
        )


@strawberry.input(description="The period to settle.")
class RunSettlementInput:
    period_start: datetime = strawberry.field(description="Start (inclusive), with its offset.")
    period_end: datetime = strawberry.field(
        description="End (exclusive), with its offset: after periodStart, and past."
    )


@strawberry.input(description="A settlement run.")
class SettlementRunInput:
    run_id: strawberry.ID = strawberry.field(description="The SettlementRun's global ID.")


@strawberry.input(description="The DRAFT run to finalize.")
class FinalizeSettlementInput:
    run_id: strawberry.ID = strawberry.field(description="The SettlementRun's global ID.")
    override_open_disputes: bool = strawberry.field(
        default=False,
        description="Finalize although reconciliation disputes are open (recorded on the run).",
    )


@strawberry.type(description="The answer to runSettlement, finalizeSettlement and markSettlementPaid.")
class SettlementPayload:
    run: SettlementRun | None = strawberry.field(default=None, description="The run; null on userErrors.")
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why nothing changed; empty on success."
    )


def _run_id(value: strawberry.ID) -> int:
    return require_global_id(value, "SettlementRun", "runId")


@strawberry.type
class SettlementQuery:
    @field(
        "One run; a partner sees its own statement of it, drafts too (marked DRAFT). Null for no such run.",
        access=partner_or_admin(
            "settlement:read", "admin:settlement", "its own statement", "every statement"
        ),
        codes=(UserErrorCode.INVALID_ID,),
    )
    async def settlement_run(
        self,
        info: GraphQLInfo,
        id: Annotated[strawberry.ID, strawberry.argument(description="The SettlementRun's global ID.")],
    ) -> SettlementRun | None:
        run = await loaders.runs(info).load(_run_id(id))
        return SettlementRun.of(run) if run else None

    @field(
        "All settlement runs, drafts too, newest first.", access=admin("admin:settlement"), codes=PAGE_CODES
    )
    async def settlement_runs(
        self, info: GraphQLInfo, first: First = None, after: After = None
    ) -> Connection[SettlementRun]:
        info.context.principal.require_admin("admin:settlement")
        page = await queries.list_runs(info.context.db, info.context.principal, first=first, after=after)
        return Connection.of(page, SettlementRun.of)

    @field(
        "Finalized and paid runs, newest first, each with only the calling partner's statement.",
        access=partner("settlement:read"),
        codes=PAGE_CODES,
    )
    async def my_statements(
        self, info: GraphQLInfo, first: First = None, after: After = None
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


# What every step of a stored run (finalize, mark paid) can answer.
RUN_STEP_CODES = (
    UserErrorCode.INVALID_ID,
    UserErrorCode.SETTLEMENT_RUNNING,
    UserErrorCode.RUN_NOT_FOUND,
    UserErrorCode.INVALID_STATUS,
    UserErrorCode.HASH_MISMATCH,
)


@strawberry.type
class SettlementMutation:
    @mutation(
        "Compute a period's statements as a DRAFT, replacing any draft that overlaps it"
        " (audit-logged). One run at a time.",
        access=admin("admin:settlement"),
        codes=(
            UserErrorCode.INVALID,
            UserErrorCode.IN_FUTURE,
            UserErrorCode.SETTLEMENT_RUNNING,
            UserErrorCode.PERIOD_FINALIZED,
            UserErrorCode.CONTRACT_CURRENCY_MISMATCH,
        ),
    )
    async def run_settlement(
        self, info: GraphQLInfo, input: Annotated[RunSettlementInput, INPUT]
    ) -> SettlementPayload:
        return await _payload(
            service.run_settlement(
                info.context.db,
                info.context.principal,
                period_start=input.period_start,
                period_end=input.period_end,
            ),
        )

    @mutation(
        "Freeze a DRAFT run: immutable, hashed, no overlapping runs (audit-logged). Refused while"
        " reconciliation disputes are open unless overrideOpenDisputes is true.",
        access=admin("admin:settlement"),
        codes=(*RUN_STEP_CODES, UserErrorCode.STALE_DRAFT, UserErrorCode.OPEN_DISPUTES),
    )
    async def finalize_settlement(
        self, info: GraphQLInfo, input: Annotated[FinalizeSettlementInput, INPUT]
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

    @mutation(
        "Record that a FINALIZED run's payments were made (audit-logged).",
        access=admin("admin:settlement"),
        codes=RUN_STEP_CODES,
    )
    async def mark_settlement_paid(
        self, info: GraphQLInfo, input: Annotated[SettlementRunInput, INPUT]
    ) -> SettlementPayload:
        try:
            run_id = _run_id(input.run_id)
        except DomainError as exc:
            return SettlementPayload(user_errors=user_errors(exc.errors))
        return await _payload(service.mark_settlement_paid(info.context.db, info.context.principal, run_id))
