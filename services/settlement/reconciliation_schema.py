"""GraphQL for reconciliation: partners (or admins for them) upload their record of a run's period;
admins resolve the disputes it opens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from services.partners.schema import Partner, partner_loader
from services.settlement import loaders
from services.settlement import reconciliation as service
from services.settlement.models import ReconciliationKind, ReconciliationStatus
from services.settlement.reconciliation_csv import MAX_REPORTED_ERRORS
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import (
    After,
    Connection,
    First,
    GraphQLInfo,
    Node,
    Points,
    UserError,
    graphql_enum,
    user_errors,
)
from shared.ids import require_global_id, to_global_id
from shared.list_sizes import list_size
from shared.operations import INPUT, PAGE_CODES, Access, admin, field, mutation, partner_or_admin

# services/settlement/reconciliation.py `_own_partner` and `_visible`: a partner reads with either
# settlement scope (the one that uploads must read what its upload found).
READERS = Access(
    "partner credentials with the scope `settlement:read` or `settlement:reconcile` (its own), or"
    " coalition admins with the scope `admin:settlement` (all)",
    ("settlement:read", "settlement:reconcile", "admin:settlement"),
)

graphql_enum(
    ReconciliationStatus,
    description="How an (order, kind) of the partner's file compares with the ledger; anything"
    " but MATCHED is a dispute.",
    values={
        ReconciliationStatus.MATCHED: "The same points on both sides.",
        ReconciliationStatus.MISSING_IN_LEDGER: "In the partner's file, not in what the run settled"
        " (a late arrival shows so, and is settled by the next run).",
        ReconciliationStatus.MISSING_IN_PARTNER_FILE: "Settled by the run, not in the partner's file.",
        ReconciliationStatus.POINTS_MISMATCH: "On both sides, with different points.",
    },
)
graphql_enum(
    ReconciliationKind,
    description="The ledger entries a partner's own systems record, by order (expiries are the coalition's).",
    values={
        ReconciliationKind.EARN: "A purchase's points (recordPurchase).",
        ReconciliationKind.REDEEM: "Points spent (redeemPoints, a capture, a reward).",
        ReconciliationKind.REVERSE: "Points taken back by a refund (reversePurchase).",
        ReconciliationKind.CANCEL_REDEMPTION: "Points given back by cancelRedemption.",
    },
)


@strawberry.type(description="One (orderId, kind) compared between the partner's file and the ledger.")
class ReconciliationItem(Node):
    order_id: str = strawberry.field(description="The partner's orderId.")
    kind: ReconciliationKind = strawberry.field(description="The kind of entry compared.")
    ledger_points: Points | None = strawberry.field(description="Null: not in the ledger.")
    partner_points: Points | None = strawberry.field(description="Null: not in the partner's file.")
    status: ReconciliationStatus = strawberry.field(description="How the two sides compare.")
    is_dispute: bool = strawberry.field(description="Anything but MATCHED.")
    resolution_note: str | None = strawberry.field(
        description="What was agreed, as the admin who resolved it wrote; null while open."
    )
    resolved_by: str | None = strawberry.field(description="The client id of the admin who resolved it.")
    resolved_at: datetime | None = strawberry.field(description="When it was resolved; null while open.")

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


@strawberry.type(description="A partner's own record of a run's period, matched against the ledger.")
class Reconciliation(Node):
    run_id: strawberry.ID = strawberry.field(description="The SettlementRun (global ID) it reconciles.")
    rows: int = strawberry.field(description="Rows in the partner's file.")
    submitted_at: datetime = strawberry.field(description="When the file was uploaded.")
    submitted_by: str = strawberry.field(description="The client id that uploaded it.")
    matched: int = strawberry.field(description="Items MATCHED.")
    missing_in_ledger: int = strawberry.field(description="Items MISSING_IN_LEDGER.")
    missing_in_partner_file: int = strawberry.field(description="Items MISSING_IN_PARTNER_FILE.")
    points_mismatch: int = strawberry.field(description="Items POINTS_MISMATCH.")
    open_disputes: int = strawberry.field(description="Disputes not resolved yet.")
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

    @strawberry.field(description="The partner whose file it is.")
    async def partner(self, info: GraphQLInfo) -> Partner | None:
        return await partner_loader(info).load(self._view.partner_id)

    @field("Compared (order, kind) pairs, in order of creation.", access=READERS, codes=PAGE_CODES)
    async def items(
        self,
        info: GraphQLInfo,
        status: Annotated[
            ReconciliationStatus | None, strawberry.argument(description="Only items of this status.")
        ] = None,
        disputes_only: Annotated[
            bool, strawberry.argument(description="Only disputes (not MATCHED).")
        ] = False,
        first: First = None,
        after: After = None,
    ) -> Connection[ReconciliationItem]:
        asked = service.items_page(
            self._view, status=status, disputes_only=disputes_only, first=first, after=after
        )
        page = await loaders.reconciliation_items(info).load(asked)
        return Connection.of(page, ReconciliationItem.of)


@strawberry.input(description="A partner's file for a DRAFT run.")
class SubmitReconciliationInput:
    run_id: strawberry.ID = strawberry.field(description="The DRAFT SettlementRun's global ID.")
    csv: str = strawberry.field(
        description="Header orderId,kind,points,occurredAt, then one row per event: orderId as the"
        " API received it (1 to 200 characters), kind one of ReconciliationKind, points a positive"
        " whole number in ASCII digits (a magnitude: the kind gives the sign), occurredAt an ISO 8601"
        " instant with its offset within the run's period (the occurredAt the ledger recorded). Rows"
        " of one (orderId, kind) are summed. Files over the request limit go as the body of"
        " POST /settlement/runs/{id}/reconciliation (text/csv)."
    )
    partner_id: strawberry.ID | None = strawberry.field(
        default=None, description="Admins only: the partner the file is from."
    )


@strawberry.input(description="A dispute to close.")
class ResolveDisputeInput:
    item_id: strawberry.ID = strawberry.field(description="The ReconciliationItem's global ID.")
    note: str = strawberry.field(description="What was agreed and done about it, 1 to 2,000 characters.")


@strawberry.type(description="The answer to submitReconciliation.")
class ReconciliationPayload:
    reconciliation: Reconciliation | None = strawberry.field(
        default=None, description="The comparison; null on userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Why nothing was kept: every bad row of the file by line (at most 50), or a"
        " problem with the run or the partner; empty on success.",
        metadata=list_size(fixed=MAX_REPORTED_ERRORS + 1),  # bad rows, and "stopped at"
    )


@strawberry.type(description="The answer to resolveDispute.")
class ResolveDisputePayload:
    item: ReconciliationItem | None = strawberry.field(
        default=None, description="The resolved item; null on userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why it was not resolved; empty on success."
    )


@strawberry.type
class ReconciliationQuery:
    @field(
        "A reconciliation; null for none, or one that is not the caller's.",
        access=READERS,
        codes=(UserErrorCode.INVALID_ID,),
    )
    async def reconciliation(
        self,
        info: GraphQLInfo,
        id: Annotated[strawberry.ID, strawberry.argument(description="The Reconciliation's global ID.")],
    ) -> Reconciliation | None:
        rec_id = require_global_id(id, "Reconciliation", "id")
        found = await service.get_reconciliation(info.context.db, info.context.principal, rec_id)
        return Reconciliation.of(found) if found else None


@strawberry.type
class ReconciliationMutation:
    @mutation(
        "Match a partner's own record of a DRAFT run's period against the ledger; replaces the"
        " partner's previous upload for the run. Bad rows are named by line; nothing is kept.",
        access=partner_or_admin(
            "settlement:reconcile",
            "admin:settlement",
            "its own statement",
            "naming the partner in partnerId; audit-logged",
        ),
        codes=(
            UserErrorCode.INVALID_ID,
            UserErrorCode.REQUIRED,
            UserErrorCode.RUN_NOT_FOUND,
            UserErrorCode.RUN_FINAL,
            UserErrorCode.PARTNER_NOT_FOUND,
            UserErrorCode.INVALID_HEADER,
            UserErrorCode.INVALID_ROW,
            UserErrorCode.TOO_MANY_ERRORS,
        ),
    )
    async def submit_reconciliation(
        self, info: GraphQLInfo, input: Annotated[SubmitReconciliationInput, INPUT]
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

    @mutation(
        "Close a dispute with a note saying what was agreed (audit-logged).",
        access=admin("admin:settlement"),
        codes=(
            UserErrorCode.INVALID_ID,
            UserErrorCode.REQUIRED,
            UserErrorCode.TOO_LONG,
            UserErrorCode.INVALID,
            UserErrorCode.ITEM_NOT_FOUND,
            UserErrorCode.NOT_A_DISPUTE,
            UserErrorCode.ALREADY_RESOLVED,
        ),
    )
    async def resolve_dispute(
        self, info: GraphQLInfo, input: Annotated[ResolveDisputeInput, INPUT]
    ) -> ResolveDisputePayload:
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
