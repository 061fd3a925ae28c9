"""GraphQL for reconciliation: partners (or admins for them) upload their record of a run's period;
admins resolve the disputes it opens."""

from __future__ import annotations

from datetime import datetime

import strawberry

from services.partners.schema import Partner, partner_loader
from services.settlement import loaders
from services.settlement import reconciliation as service
from services.settlement.models import ReconciliationKind, ReconciliationStatus
from services.settlement.reconciliation_csv import MAX_REPORTED_ERRORS
from shared.errors import DomainError
from shared.graphql_types import Connection, GraphQLInfo, Node, Points, UserError, user_errors
from shared.ids import require_global_id, to_global_id
from shared.list_sizes import list_size

strawberry.enum(
    ReconciliationStatus,
    description="How an (order, kind) of the partner's file compares with the ledger; anything"
    " but MATCHED is a dispute.",
)
strawberry.enum(
    ReconciliationKind, description="The ledger entries a partner's own systems record, by order."
)


@strawberry.type
class ReconciliationItem(Node):
    order_id: str
    kind: ReconciliationKind
    ledger_points: Points | None = strawberry.field(description="Null: not in the ledger.")
    partner_points: Points | None = strawberry.field(description="Null: not in the partner's file.")
    status: ReconciliationStatus
    is_dispute: bool = strawberry.field(description="Anything but MATCHED.")
    resolution_note: str | None
    resolved_by: str | None
    resolved_at: datetime | None

    @classmethod
    def of(cls, item: service.Item) -> ReconciliationItem:
        return cls(
            id=strawberry.ID(to_global_id("ReconciliationItem", item.id)),
            order_id=item.order_id,
            kind=ReconciliationKind(item.kind),
            ledger_points=item.ledger_points,
            partner_points=item.partner_points,
            status=ReconciliationStatus(item.status),
            is_dispute=item.status != ReconciliationStatus.MATCHED,
            resolution_note=item.resolution_note,
            resolved_by=item.resolved_by,
            resolved_at=item.resolved_at,
        )


@strawberry.type
class Reconciliation(Node):
    run_id: strawberry.ID
    rows: int = strawberry.field(description="Rows in the partner's file.")
    submitted_at: datetime
    submitted_by: str
    matched: int
    missing_in_ledger: int
    missing_in_partner_file: int
    points_mismatch: int
    open_disputes: int
    _view: strawberry.Private[service.Reconciliation]

    @classmethod
    def of(cls, rec: service.Reconciliation) -> Reconciliation:
        counts = rec.counts
        return cls(
            id=strawberry.ID(to_global_id("Reconciliation", rec.id)),
            run_id=strawberry.ID(to_global_id("SettlementRun", rec.run_id)),
            rows=rec.rows,
            submitted_at=rec.submitted_at,
            submitted_by=rec.submitted_by,
            matched=counts[ReconciliationStatus.MATCHED],
            missing_in_ledger=counts[ReconciliationStatus.MISSING_IN_LEDGER],
            missing_in_partner_file=counts[ReconciliationStatus.MISSING_IN_PARTNER_FILE],
            points_mismatch=counts[ReconciliationStatus.POINTS_MISMATCH],
            open_disputes=rec.open_disputes,
            _view=rec,
        )

    @strawberry.field
    async def partner(self, info: GraphQLInfo) -> Partner | None:
        return await partner_loader(info).load(self._view.partner_id)

    @strawberry.field(description="Compared (order, kind) pairs, in order of creation.")
    async def items(
        self,
        info: GraphQLInfo,
        status: ReconciliationStatus | None = None,
        disputes_only: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ReconciliationItem]:
        asked = service.items_page(
            self._view, status=status, disputes_only=disputes_only, first=first, after=after
        )
        page = await loaders.reconciliation_items(info).load(asked)
        return Connection.of(page, ReconciliationItem.of)


@strawberry.input
class SubmitReconciliationInput:
    run_id: strawberry.ID
    csv: str = strawberry.field(
        description="Header orderId,kind,points,occurredAt; one row per event. Files over the"
        " request limit go as the body of POST /settlement/runs/{id}/reconciliation (text/csv)."
    )
    partner_id: strawberry.ID | None = strawberry.field(
        default=None, description="Admins only: the partner the file is from."
    )


@strawberry.input
class ResolveDisputeInput:
    item_id: strawberry.ID
    note: str


@strawberry.type
class ReconciliationPayload:
    reconciliation: Reconciliation | None = None
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        metadata=list_size(fixed=MAX_REPORTED_ERRORS + 1),  # bad rows, and "stopped at"
    )


@strawberry.type
class ResolveDisputePayload:
    item: ReconciliationItem | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ReconciliationQuery:
    @strawberry.field(description="A reconciliation: admins, or the partner it belongs to.")
    async def reconciliation(self, info: GraphQLInfo, id: strawberry.ID) -> Reconciliation | None:
        rec_id = require_global_id(id, "Reconciliation", "id")
        found = await service.get_reconciliation(info.context.db, info.context.principal, rec_id)
        return Reconciliation.of(found) if found else None


@strawberry.type
class ReconciliationMutation:
    @strawberry.mutation(
        description="Match a partner's own record of a run's period against the ledger; replaces"
        " the partner's previous upload for the run. Bad rows are named by line; nothing is kept."
    )
    async def submit_reconciliation(
        self, info: GraphQLInfo, input: SubmitReconciliationInput
    ) -> ReconciliationPayload:
        try:
            rec = await service.submit_reconciliation(
                info.context.db,
                info.context.principal,
                run_id=require_global_id(input.run_id, "SettlementRun", "runId"),
                partner_id=require_global_id(input.partner_id, "Partner", "partnerId")
                if input.partner_id is not None
                else None,
                csv_text=input.csv,
            )
        except DomainError as exc:
            return ReconciliationPayload(user_errors=user_errors(exc.errors))
        return ReconciliationPayload(reconciliation=Reconciliation.of(rec))

    @strawberry.mutation(description="Close a dispute with a note saying what was agreed (admins).")
    async def resolve_dispute(self, info: GraphQLInfo, input: ResolveDisputeInput) -> ResolveDisputePayload:
        try:
            item = await service.resolve_dispute(
                info.context.db,
                info.context.principal,
                item_id=require_global_id(input.item_id, "ReconciliationItem", "itemId"),
                note=input.note,
            )
        except DomainError as exc:
            return ResolveDisputePayload(user_errors=user_errors(exc.errors))
        return ResolveDisputePayload(item=ReconciliationItem.of(item))
