"""Refunds and cancelled redemptions: points go back where they came from."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from shared import clock
from shared.ids import to_global_id
from tests.factories import (
    balance,
    cancel,
    earn,
    enroll,
    link,
    make_partner,
    redeem,
    reverse,
    unique,
    violations,
)


async def _lots(db, member_id):
    async with db.sessions() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT issuing_partner_id, points, remaining FROM lots WHERE member_id = :m ORDER BY id"
                ),
                {"m": member_id},
            )
        ).all()
    return [tuple(r) for r in rows]


async def test_partial_refunds_are_pro_rata_and_never_exceed_what_was_earned(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    order = unique("order")
    await earn(db, cafe, member.member_number, "99.99", order_id=order)  # 99 points
    first = await reverse(db, cafe, order, "33.33")
    assert first.result["points"] == 33  # floor(99 * 33.33 / 99.99)
    second = await reverse(db, cafe, order, "33.33")
    assert second.result["points"] == 33  # cumulative: floor(99 * 66.66 / 99.99) = 66
    too_much = await reverse(db, cafe, order, "33.33")
    assert too_much.result["points"] == 33  # the whole purchase is refunded: exactly 99 back
    assert (await balance(db, member.id)).available == 0
    over = await reverse(db, cafe, order, "0.01")
    assert [e.code for e in over.errors] == ["ALREADY_REVERSED"] or [e.code for e in over.errors] == [
        "REFUND_EXCEEDS_PURCHASE"
    ]
    assert await violations(db) == []


async def test_the_readme_refund_example_12_90_then_5_00_takes_back_4_then_8(db):
    """README, "Rules a newcomer trips on": floor(points x refunded / amount), cumulatively."""
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    order = unique("order")
    earned = await earn(db, cafe, member.member_number, "12.90", order_id=order)
    assert earned.result["points"] == 12  # floored once per purchase
    first = await reverse(db, cafe, order, "5.00")
    assert first.result["points"] == 4  # floor(12 * 5.00 / 12.90) = floor(4.65)
    rest = await reverse(db, cafe, order, "7.90")
    assert rest.result["points"] == 8  # floor(12 * 12.90 / 12.90) - 4: the whole refund is all 12
    assert (await balance(db, member.id)).available == 0


async def test_refund_larger_than_the_purchase_is_refused(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    order = unique("order")
    await earn(db, cafe, member.member_number, "10.00", order_id=order)
    outcome = await reverse(db, cafe, order, "10.01")
    assert [(e.code, e.field) for e in outcome.errors] == [("REFUND_EXCEEDS_PURCHASE", "amount.amount")]
    assert (await balance(db, member.id)).available == 10


async def test_refund_after_points_were_spent_elsewhere_claws_back_then_leaves_debt(db):
    cafe = await make_partner(db)
    airline = await make_partner(db)
    bookshop = await make_partner(db)
    member = await enroll(db, cafe)
    order = unique("order")
    await earn(db, cafe, member.member_number, "100", order_id=order)
    await earn(db, bookshop, member.member_number, "30")
    await link(db, airline, member)
    assert (await redeem(db, airline, member.member_number, 90)).errors == []
    # 10 cafe points + 30 bookshop points remain. Refunding the whole cafe purchase takes the
    # 10 from its own lot, claws back the bookshop's 30, and leaves 60 owed.
    outcome = await reverse(db, cafe, order)
    assert outcome.result["points"] == 100
    b = await balance(db, member.id)
    assert b.available == -60
    assert [e.code for e in (await redeem(db, airline, member.member_number, 1)).errors] == [
        "INSUFFICIENT_POINTS"
    ]
    # Later earnings repay the debt first.
    await earn(db, bookshop, member.member_number, "70")
    assert (await balance(db, member.id)).available == 10
    async with db.sessions() as session:
        kinds = dict(
            (
                await session.execute(
                    text("SELECT kind, SUM(points) FROM lot_consumptions WHERE member_id = :m GROUP BY kind"),
                    {"m": member.id},
                )
            ).all()
        )
    assert kinds == {"REDEMPTION": 90, "REVERSAL": 10, "CLAWBACK": 30, "DEBT_REPAYMENT": 60}
    assert await violations(db) == []


async def test_cancel_restores_points_to_their_original_lots(db):
    cafe = await make_partner(db)
    airline = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "20")
    await earn(db, airline, member.member_number, "20")
    redemption = await redeem(db, airline, member.member_number, 30)
    before = await _lots(db, member.id)
    assert sum(r for _, _, r in before) == 10
    rid = to_global_id("Redemption", redemption.result["redemption_id"])
    outcome = await cancel(db, airline, rid)
    assert outcome.errors == [] and outcome.result["points"] == 30
    assert [r for _, _, r in await _lots(db, member.id)] == [20, 20]
    again = await cancel(db, airline, rid)
    assert [e.code for e in again.errors] == ["ALREADY_CANCELLED"]
    assert await violations(db) == []


async def test_another_partner_cannot_cancel_or_refund(db):
    cafe = await make_partner(db)
    airline = await make_partner(db)
    member = await enroll(db, cafe)
    order = unique("order")
    await earn(db, cafe, member.member_number, "20", order_id=order)
    redemption = await redeem(db, cafe, member.member_number, 5)
    rid = to_global_id("Redemption", redemption.result["redemption_id"])
    assert [e.code for e in (await cancel(db, airline, rid)).errors] == ["REDEMPTION_NOT_FOUND"]
    assert [e.code for e in (await reverse(db, airline, order)).errors] == ["PURCHASE_NOT_FOUND"]
    assert (await balance(db, member.id)).available == 15


async def test_cancel_into_an_expired_lot_expires_it_again_at_once(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    start = clock.now()
    await earn(db, cafe, member.member_number, "10", occurred_at=start - timedelta(days=700))
    redemption = await redeem(db, cafe, member.member_number, 10)
    rid = to_global_id("Redemption", redemption.result["redemption_id"])
    clock.set_clock(lambda: start + timedelta(days=60))  # past the 24-month expiry
    try:
        outcome = await cancel(db, cafe, rid)
        assert outcome.errors == []
        b = await balance(db, member.id)
        assert (b.available, b.pending) == (0, 0)
    finally:
        clock.set_clock(None)
    async with db.sessions() as session:
        expired = await session.scalar(
            text("SELECT SUM(points) FROM lot_consumptions WHERE member_id = :m AND kind = 'EXPIRY'"),
            {"m": member.id},
        )
    assert expired == 10
    assert await violations(db) == []
