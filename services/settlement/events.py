"""The settlement service's events (docs/events.md): settlement.finalized and dispute.opened.

Neither is about a member (`member_id` null). settlement.finalized is heard by every partner with
a statement on the run; dispute.opened by the partner whose reconciliation found it. Both are
written in the transaction that makes the change (the finalization, the reconciliation upload).
"""

from __future__ import annotations

from collections.abc import Sequence

from asyncpg import Record

from services.settlement.queries import Run
from shared.ids import to_global_id
from shared.outbox import Event, EventType, record_event, record_events
from shared.sql import DbConnection


def run_partners(run: Run) -> list[int]:
    """The partners with a statement on the run (the coalition's own statement has no partner)."""
    return sorted({s.partner_id for s in run.statements if s.partner_id is not None})


async def record_finalized(conn: DbConnection, run: Run) -> None:
    partner_ids = run_partners(run)
    await record_event(
        conn,
        EventType.SETTLEMENT_FINALIZED,
        {
            "runId": to_global_id("SettlementRun", run.id),
            "periodStart": run.period_start,
            "periodEnd": run.period_end,
            "currency": run.currency,
            "contentHash": run.content_hash,
            "partnerIds": [to_global_id("Partner", p) for p in partner_ids],
        },
        partner_ids=partner_ids,
    )


async def record_disputes(conn: DbConnection, run_id: int, partner_id: int, items: Sequence[Record]) -> None:
    """dispute.opened for each reconciliation item that is not a match (one statement for all);
    `reason` is the item's status (MISSING_IN_LEDGER, MISSING_IN_PARTNER_FILE, POINTS_MISMATCH)."""
    await record_events(
        conn,
        [
            Event(
                EventType.DISPUTE_OPENED,
                {
                    "disputeId": to_global_id("ReconciliationItem", item["id"]),
                    "runId": to_global_id("SettlementRun", run_id),
                    "partnerId": to_global_id("Partner", partner_id),
                    "reason": item["status"],
                    "orderId": item["order_id"],
                    "kind": item["kind"],
                },
                partner_ids=(partner_id,),
            )
            for item in sorted(items, key=lambda i: i["id"])
        ],
    )
