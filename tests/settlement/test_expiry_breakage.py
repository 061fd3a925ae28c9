"""Breakage falls in the period in which points expired, whenever the worker posts the expiry.

The ruling: an expiry is dated at the lot's `expires_at`. A worker that was down across a period's
end posts it after that period was settled and finalized: it is then a late arrival, settled once,
by the next run, as an ADJUSTMENT line naming the finalized run.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from services.gateway.worker import run_job
from services.ledger.scheduled import expire_due_lots
from services.settlement import audit as settlement_audit
from services.settlement import service as settlement
from shared import clock
from tests.factories import earn, enroll, make_partner
from tests.settlement.test_settlement import SETTLER


def _at(moment):
    clock.set_clock(lambda: moment)


async def test_a_late_expiry_is_breakage_of_its_own_period_settled_by_the_next_run(db):
    day = timedelta(days=1)
    start = clock.now().replace(microsecond=0) - timedelta(days=2300)
    cafe = await make_partner(db, issue_price="0.010", breakage_share=Decimal("0.5"))
    member = await enroll(db, cafe)
    try:
        _at(start)  # points earned 24 months before they expire, one hour into the period
        earned = await earn(
            db,
            cafe,
            member.member_number,
            "1000",
            occurred_at=clock.add_months(start, -24) + timedelta(hours=1),
        )
        assert earned.errors == [] and earned.result["points"] == 1000
        _at(start + 2 * day)  # the period has ended; the worker has not run
        first = await settlement.run_settlement(db, SETTLER, period_start=start, period_end=start + day)
        assert not [x for x in first.lines if x.kind == "BREAKAGE"]
        await settlement.finalize_settlement(db, SETTLER, first.id)

        _at(start + 3 * day)  # the worker comes back and posts the expiry, dated when it happened
        await run_job(db, expire_due_lots)

        _at(start + 4 * day)
        second = await settlement.run_settlement(
            db, SETTLER, period_start=start + day, period_end=start + 2 * day
        )
    finally:
        clock.set_clock(None)
    late = [x for x in second.lines if x.kind == "ADJUSTMENT" and x.adjusted_kind == "BREAKAGE"]
    # 1000 points x 0.010 issue price x 0.5 breakage share, owed by the cafe to the coalition.
    assert {(x.partner_id, x.original_run_id, x.points, x.amount) for x in late} == {
        (cafe.id, first.id, 1000, Decimal("-5.00")),
        (None, first.id, 1000, Decimal("5.00")),
    }
    assert second.original_periods[first.id] == (start, start + day)
    assert await settlement_audit.audit_runs(db) == []
