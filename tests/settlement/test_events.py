"""The settlement service's outbox events: settlement.finalized and dispute.opened, each in the
transaction that finalizes the run or uploads the reconciliation (docs/events.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.settlement import events as settlement_events
from services.settlement import reconciliation as rec
from services.settlement import service as settlement
from shared.errors import DomainError
from shared.ids import to_global_id
from tests.factories import outbox
from tests.settlement.test_reconciliation import _csv, _period_with_orders
from tests.settlement.test_settlement import SETTLER


async def _events_of_run(db, run_id: int, types: tuple[str, ...]) -> list[dict]:
    gid = to_global_id("SettlementRun", run_id)
    return await outbox(db, types=types, where=f"data->>'runId' = '{gid}'")


async def test_finalizing_a_run_tells_every_partner_on_it_once(db):
    _, cafe, _, run = await _period_with_orders(db, 3400)
    await settlement.finalize_settlement(db, SETTLER, run.id)
    with pytest.raises(DomainError):
        await settlement.finalize_settlement(db, SETTLER, run.id)  # final already: nothing more
    [event] = await _events_of_run(db, run.id, ("settlement.finalized",))
    partners = settlement_events.run_partners(run)
    assert cafe.id in partners
    assert event == {
        "type": "settlement.finalized",
        "member_id": None,
        "partner_ids": partners,
        "data": {
            "runId": to_global_id("SettlementRun", run.id),
            "periodStart": run.period_start.isoformat(),
            "periodEnd": run.period_end.isoformat(),
            "currency": run.currency,
            "contentHash": run.content_hash,
            "partnerIds": [to_global_id("Partner", p) for p in partners],
        },
    }


async def test_each_dispute_is_opened_once_and_a_refused_finalize_says_nothing(db):
    t0, cafe, o, run = await _period_with_orders(db, 3450)
    at = (t0 + timedelta(hours=1)).isoformat()
    report = await rec.submit_reconciliation(
        db,
        cafe.principal,
        run_id=run.id,
        partner_id=None,
        csv_text=_csv(
            [(o["coffee"], "EARN", 1000, at), (o["cake"], "EARN", 250, at), ("walk-in", "EARN", 4, at)]
        ),
    )
    with pytest.raises(DomainError) as refused:
        await settlement.finalize_settlement(db, SETTLER, run.id)
    assert refused.value.errors[0].code == "OPEN_DISPUTES"
    assert await _events_of_run(db, run.id, ("settlement.finalized",)) == []

    page = await rec.items(db, SETTLER, report, status=None, disputes_only=True, first=10, after=None)
    opened = await _events_of_run(db, run.id, ("dispute.opened",))
    assert len(opened) == report.open_disputes == 4
    assert {(e["data"]["orderId"], e["data"]["kind"]): e for e in opened} == {
        (item.order_id, item.kind): {
            "type": "dispute.opened",
            "member_id": None,
            "partner_ids": [cafe.id],
            "data": {
                "disputeId": to_global_id("ReconciliationItem", item.id),
                "runId": to_global_id("SettlementRun", run.id),
                "partnerId": to_global_id("Partner", cafe.id),
                "reason": item.status,
                "orderId": item.order_id,
                "kind": item.kind,
            },
        }
        for _, item in page.items
    }
    assert {e["data"]["reason"] for e in opened} == {
        "POINTS_MISMATCH",
        "MISSING_IN_LEDGER",
        "MISSING_IN_PARTNER_FILE",
    }
