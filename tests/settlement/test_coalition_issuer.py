"""Settlement of coalition-issued points: the coalition owes the redeeming partner its redeem price
(a REDEMPTION line whose payer is the coalition), no issue fee is charged on the coalition's share,
coalition breakage produces no line (the coalition would owe itself), and nets still sum to zero."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from services.gateway.worker import run_job
from services.ledger.scheduled import expire_due_lots
from services.settlement import audit as settlement_audit
from services.settlement import service as settlement
from shared import clock
from tests.factories import earn_with_coalition, enroll, link, make_partner, unique, violations
from tests.factories import redeem as redeem_points
from tests.settlement.test_settlement import SETTLER


async def test_coalition_points_redeemed_at_a_partner_are_owed_by_the_coalition(db) -> None:
    t0 = clock.now().replace(microsecond=0) - timedelta(days=4000)  # a period no other test books into
    cafe = await make_partner(
        db,
        issue_price="0.010",
        redeem_price="0.008",
        issue_fee_per_point=Decimal("0.001"),
        breakage_share=Decimal("0.5"),
    )
    shop = await make_partner(
        db, issue_price="0.012", redeem_price="0.010", issue_fee_per_point=Decimal("0.002")
    )
    member = await enroll(db, cafe)
    await link(db, shop, member)
    try:
        clock.set_clock(lambda: t0 + timedelta(hours=1))
        earned = await earn_with_coalition(db, cafe, member.member_number, 100, 40, order_id=unique("o"))
        assert earned.errors == []
        clock.set_clock(lambda: t0 + timedelta(hours=2))
        assert (await redeem_points(db, shop, member.member_number, 100)).errors == []
        # 20 points (5 the coalition's) earned two years earlier expire inside the period
        clock.set_clock(lambda: t0 + timedelta(hours=3))
        old = clock.add_months(t0 + timedelta(days=2), -24)
        assert (
            await earn_with_coalition(db, cafe, member.member_number, 20, 5, occurred_at=old)
        ).errors == []
        clock.set_clock(lambda: t0 + timedelta(days=3))
        await run_job(db, expire_due_lots)
        clock.set_clock(lambda: t0 + timedelta(days=11))
        run = await settlement.run_settlement(
            db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=10)
        )
    finally:
        clock.set_clock(None)

    statements = {s.partner_id: s for s in run.statements}
    shop_lines = {(x.kind, x.counterparty_id): (x.points, x.amount) for x in statements[shop.id].lines}
    assert shop_lines == {
        ("REDEMPTION_RECEIVABLE", cafe.id): (60, Decimal("0.60")),  # the cafe's 60 at the shop's 0.010
        ("REDEMPTION_RECEIVABLE", None): (40, Decimal("0.40")),  # the coalition's 40, same price
    }
    cafe_lines = {(x.kind, x.counterparty_id): (x.points, x.amount) for x in statements[cafe.id].lines}
    assert cafe_lines == {
        ("REDEMPTION_PAYABLE", shop.id): (60, Decimal("-0.60")),
        ("ISSUE_FEE", None): (60, Decimal("-0.06")),  # the partner's share only: 60 x 0.001
        ("BREAKAGE", None): (15, Decimal("-0.08")),  # its 15 of the 20 expired: 15 x 0.010 x 0.5
    }
    coalition_lines = [x for x in statements[None].lines if x.counterparty_id in (cafe.id, shop.id)]
    assert {(x.kind, x.counterparty_id): (x.points, x.amount) for x in coalition_lines} == {
        ("REDEMPTION_PAYABLE", shop.id): (40, Decimal("-0.40")),
        ("ISSUE_FEE", cafe.id): (60, Decimal("0.06")),
        ("BREAKAGE", cafe.id): (15, Decimal("0.08")),
    }
    # the coalition's 5 expired points: no line (the coalition would owe itself)
    assert not any(x.kind == "BREAKAGE" and x.points == 5 for x in run.lines)
    assert statements[shop.id].net == Decimal("1.00")
    assert statements[cafe.id].net == Decimal("-0.74")
    assert sum((s.net for s in run.statements), Decimal(0)) == 0

    final = await settlement.finalize_settlement(db, SETTLER, run.id)
    assert final.status == "FINALIZED"
    assert await settlement_audit.audit_runs(db) == []  # the matrix carries exactly the points consumed
    assert await violations(db) == []
