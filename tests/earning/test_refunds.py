"""Refunds by line take back exactly what those lines earned under the rules of the purchase."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from services.earning import service as earning
from services.earning.refunds import RefundLine
from shared import clock
from shared.error_codes import UserErrorCode
from tests.earning.helpers import line, rule, total
from tests.factories import balance, earn, enroll, make_partner, reverse, unique, violations


async def _basket(db, shop, member, order):
    lines = (
        line("latte", "4.00", category="coffee", quantity=2),
        line("card", "25.00", category="giftcard"),
        line("cookie", "2.00", category="bakery", quantity=3),
    )
    outcome = await earn(db, shop, member.member_number, total(*lines), lines=lines, order_id=order)
    assert outcome.errors == []
    return outcome


async def test_a_refund_by_line_under_the_rules_of_the_purchase(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    coffee = await rule(db, shop, "coffee x3", category="coffee", multiplier="3")
    await rule(db, shop, "no gift cards", category="giftcard", multiplier="0")
    order = unique("order")
    earned = await _basket(db, shop, member, order)
    assert earned.result["points"] == 12 + 0 + 2  # 4.00 x 3, the card excluded, 2.00 x 1
    # The rule changes after the purchase; the refund still takes back what the purchase earned.
    await earning.update_rule(
        db,
        shop.principal,
        rule_id=coffee.rule_id,
        changes={"multiplier": Decimal(10)},
        effective_from=clock.now() + timedelta(milliseconds=50),
    )
    card = await reverse(db, shop, order, lines=(RefundLine("card", 1),))
    assert card.result["points"] == 0
    assert card.result["refunded"] == {"amount": "25.00", "currency": "EUR"}
    one_latte = await reverse(db, shop, order, lines=(RefundLine("latte", 1),))
    assert one_latte.result["points"] == 6  # half of the latte line's 12, not 1 x 4.00 x 10
    rest = await reverse(db, shop, order)  # in full: everything left
    assert rest.result["points"] == earned.result["points"] - 6
    assert (await balance(db, member.id)).available == 0
    again = await reverse(db, shop, order)
    assert [e.code for e in again.errors] == [UserErrorCode.ALREADY_REVERSED]
    assert await violations(db) == []


async def test_line_refunds_round_down_cumulatively(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    order = unique("order")
    lines = (line("tea", "10.00", quantity=3), line("mug", "2.00"))
    earned = await earn(db, shop, member.member_number, "12.00", lines=lines, order_id=order)
    assert earned.result["points"] == 12
    taken = [
        (await reverse(db, shop, order, lines=(RefundLine("tea", 1),))).result["points"] for _ in range(3)
    ]
    assert taken == [3, 3, 4]  # floor(10/3), floor(20/3) - 3, 10 - 6
    last = await reverse(db, shop, order, lines=(RefundLine("mug", 1),))
    assert last.result["points"] == 2
    assert last.result["refunded"]["amount"] == "2.00"


async def test_over_refunding_a_line_is_refused(db):
    shop = await make_partner(db)
    member = await enroll(db, shop)
    order = unique("order")
    await _basket(db, shop, member, order)
    too_many = await reverse(db, shop, order, lines=(RefundLine("latte", 3),))
    assert [(e.code, e.field) for e in too_many.errors] == [
        (UserErrorCode.REFUND_EXCEEDS_PURCHASE, "lines[0].quantity")
    ]
    unknown = await reverse(db, shop, order, lines=(RefundLine("tea", 1),))
    assert [(e.code, e.field) for e in unknown.errors] == [(UserErrorCode.LINE_NOT_FOUND, "lines[0].sku")]


async def test_a_purchase_is_refunded_by_line_or_by_amount_not_both(db):
    shop = await make_partner(db)
    member = await enroll(db, shop)
    order = unique("order")
    await _basket(db, shop, member, order)
    assert (await reverse(db, shop, order, lines=(RefundLine("cookie", 1),))).errors == []
    mixed = await reverse(db, shop, order, "1.00")
    assert [(e.code, e.field) for e in mixed.errors] == [(UserErrorCode.INVALID, "amount")]
    plain = unique("order")
    await earn(db, shop, member.member_number, "10.00", order_id=plain)
    by_line = await reverse(db, shop, plain, lines=(RefundLine("x", 1),))
    assert [e.code for e in by_line.errors] == [UserErrorCode.LINE_NOT_FOUND]
