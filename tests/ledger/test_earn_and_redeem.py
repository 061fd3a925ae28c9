"""Earning and spending points on the real ledger."""

from __future__ import annotations

from datetime import timedelta

from shared import clock
from shared.errors import DomainError
from shared.ids import to_global_id
from tests.factories import balance, earn, enroll, link, make_partner, redeem, unique, violations


async def test_earn_floors_per_purchase_and_is_available_without_return_window(db):
    cafe = await make_partner(db, earn_rate="1")
    member = await enroll(db, cafe)
    outcome = await earn(db, cafe, member.member_number, "12.90")
    assert outcome.errors == []
    assert outcome.result["points"] == 12
    assert await balance(db, member.id) == type(await balance(db, member.id))(available=12, pending=0)
    assert await violations(db) == []


async def test_half_up_rounding_is_a_partner_choice(db):
    shop = await make_partner(db, earn_rate="1", earn_rounding="HALF_UP")
    member = await enroll(db, shop)
    outcome = await earn(db, shop, member.member_number, "12.50")
    assert outcome.result["points"] == 13


async def test_return_window_keeps_points_pending_until_it_passes(db):
    airline = await make_partner(db, earn_rate="2", return_window_days=14)
    member = await enroll(db, airline)
    await earn(db, airline, member.member_number, "100.00")
    b = await balance(db, member.id)
    assert (b.available, b.pending) == (0, 200)
    start = clock.now()
    clock.set_clock(lambda: start + timedelta(days=14, seconds=1))
    try:
        b = await balance(db, member.id)
        assert (b.available, b.pending) == (200, 0)
    finally:
        clock.set_clock(None)


async def test_redeem_spends_first_to_expire_first_across_issuers(db):
    cafe = await make_partner(db)
    airline = await make_partner(db, redeem_price="0.012")
    member = await enroll(db, cafe)
    now = clock.now()
    await earn(db, cafe, member.member_number, "50", occurred_at=now - timedelta(days=30))
    await earn(db, cafe, member.member_number, "30", occurred_at=now - timedelta(days=60))
    await link(db, airline, member)
    outcome = await redeem(db, airline, member.member_number, 40)
    assert outcome.errors == []
    assert outcome.result["value"] == {"amount": "0.48", "currency": "EUR"}
    b = await balance(db, member.id)
    assert b.available == 40
    # The older lot (30 points, expiring first) is empty; 10 came from the newer one.
    async with db.sessions() as session:
        from sqlalchemy import text

        rows = (
            await session.execute(
                text("SELECT points, remaining FROM lots WHERE member_id = :m ORDER BY earned_at"),
                {"m": member.id},
            )
        ).all()
    assert [(r.points, r.remaining) for r in rows] == [(30, 0), (50, 40)]
    assert await violations(db) == []


async def test_redeeming_more_than_available_changes_nothing(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "10")
    outcome = await redeem(db, cafe, member.member_number, 11)
    assert [e.code for e in outcome.errors] == ["INSUFFICIENT_POINTS"]
    assert outcome.errors[0].field == "points"
    assert (await balance(db, member.id)).available == 10


async def test_pending_points_cannot_be_spent(db):
    airline = await make_partner(db, return_window_days=7)
    member = await enroll(db, airline)
    await earn(db, airline, member.member_number, "100")
    outcome = await redeem(db, airline, member.member_number, 1)
    assert [e.code for e in outcome.errors] == ["INSUFFICIENT_POINTS"]


async def test_earning_at_a_new_partner_links_the_member(db):
    cafe = await make_partner(db)
    bookshop = await make_partner(db)
    member = await enroll(db, cafe)
    from services.members import service as members

    assert await members.find_member(db, bookshop.principal, member.member_number) is None
    outcome = await earn(db, bookshop, member.member_number, "5")
    assert outcome.errors == []
    found = await members.find_member(db, bookshop.principal, member.member_number)
    assert found is not None and found.id == member.id


async def test_bad_input_names_every_field(db):
    cafe = await make_partner(db)
    outcome_errors = None
    try:
        await earn(db, cafe, "123", "-1.001", currency="EUR", order_id="", key="")
    except Exception as exc:  # DomainError: validation happens before any write
        outcome_errors = exc.errors
    fields = {e.field for e in outcome_errors}
    assert {"idempotencyKey", "orderId", "memberNumber", "amount.amount"} <= fields


async def test_wrong_currency_and_too_many_decimals(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    for amount, currency, code in [
        ("10", "USD", "CURRENCY_MISMATCH"),
        ("10.001", "EUR", "INVALID_AMOUNT"),
        ("10", "ABC", "UNKNOWN_CURRENCY"),
    ]:
        key = unique("key")
        codes = await _codes(earn(db, cafe, member.member_number, amount, currency=currency, key=key))
        assert codes == [code]
        # Input errors are not pinned to the key: the corrected request goes through with it.
        fixed = await earn(db, cafe, member.member_number, "10", key=key)
        assert fixed.errors == [], (code, fixed.errors)
    assert (await balance(db, member.id)).available == 30


async def _codes(operation) -> list[str]:
    try:
        outcome = await operation
    except DomainError as exc:
        return [e.code for e in exc.errors]
    return [e.code for e in outcome.errors]


async def test_unknown_member_and_duplicate_order(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    missing = await earn(db, cafe, "100000000008", "5")
    assert [e.code for e in missing.errors] == ["MEMBER_NOT_FOUND"]
    order = unique("order")
    first = await earn(db, cafe, member.member_number, "5", order_id=order)
    assert first.errors == []
    second = await earn(db, cafe, member.member_number, "5", order_id=order)
    assert [e.code for e in second.errors] == ["DUPLICATE_ORDER"]
    assert (await balance(db, member.id)).available == 5


async def test_redemption_ids_are_global(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "5")
    outcome = await redeem(db, cafe, member.member_number, 5)
    assert to_global_id("Redemption", outcome.result["redemption_id"])
