"""README's worked example ("Earn rules, promotions and the breakdown"), run as written: a café's
rules and its weekday happy hour. If this test changes, the README's figures change with it."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from shared import clock
from tests.earning.helpers import line, promo, promo_items, rule, total
from tests.factories import earn, enroll, make_partner

PARIS = ZoneInfo("Europe/Paris")


async def test_the_cafe_and_its_happy_hour(db):
    tuesday = datetime(2026, 12, 1, 15, 30, tzinfo=PARIS)
    clock.set_clock(lambda: tuesday - timedelta(days=30))
    try:
        cafe = await make_partner(db, time_zone="Europe/Paris")
        await rule(db, cafe, "Coffee double", category="coffee", multiplier="2")
        await rule(db, cafe, "No gift cards", category="giftcard", multiplier="0")
        await rule(db, cafe, "5 per croissant", sku="croissant", points_per_unit="5")
        await promo(
            db,
            cafe,
            "Happy hour",
            starts_at=datetime(2026, 11, 2, 15, 0, tzinfo=PARIS),
            rule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            duration=timedelta(hours=2),
            categories=("coffee",),
            multiplier=Decimal("2"),
            budget_points=50_000,
        )
        member = await enroll(db, cafe)
        basket = (
            line("latte", "7.00", category="coffee", quantity=2),
            line("giftcard-20", "20.00", category="giftcard"),
            line("croissant", "2.40", category="pastry", quantity=2),
        )
        clock.set_clock(lambda: tuesday)
        happy = await earn(db, cafe, member.member_number, total(*basket), lines=basket)
        assert happy.errors == []
        assert happy.result["points"] == 38
        assert sorted(promo_items(happy)) == sorted(
            [("Coffee double", 14), ("No gift cards", 0), ("5 per croissant", 10), ("Happy hour", 14)]
        )
        clock.set_clock(lambda: tuesday + timedelta(hours=2))  # 17:30: the hour is over
        later = await earn(db, cafe, member.member_number, total(*basket), lines=basket)
        assert later.result["points"] == 24
        clock.set_clock(lambda: tuesday + timedelta(days=4))  # Saturday 15:30: weekdays only
        saturday = await earn(db, cafe, member.member_number, total(*basket), lines=basket)
        assert saturday.result["points"] == 24
    finally:
        clock.set_clock(None)
