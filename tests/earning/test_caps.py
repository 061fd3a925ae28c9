"""Caps per member and day / month: counted in the partner's time zone, exact under concurrency
(the member's earnings in the period are read under the wallet lock, in the earn's transaction)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.earning.decisions import periods
from shared import clock
from tests.earning.helpers import items, rule
from tests.factories import balance, earn, enroll, make_partner, reverse, unique


async def test_a_daily_cap_per_member(db):
    shop = await make_partner(db, earn_rate="1")
    await rule(db, shop, "50 a day", cap_per_member_day=50)
    alice = await enroll(db, shop)
    bob = await enroll(db, shop)
    first = await earn(db, shop, alice.member_number, "30.00")
    second = await earn(db, shop, alice.member_number, "30.00")
    third = await earn(db, shop, alice.member_number, "30.00")
    assert [o.result["points"] for o in (first, second, third)] == [30, 20, 0]
    assert items(second) == [(None, 30), ("50 a day", -10)]
    assert (await earn(db, shop, bob.member_number, "30.00")).result["points"] == 30  # per member


async def test_a_refund_gives_the_cap_room_back(db):
    shop = await make_partner(db, earn_rate="1")
    await rule(db, shop, "40 a day", cap_per_member_day=40)
    alice = await enroll(db, shop)
    order = unique("order")
    await earn(db, shop, alice.member_number, "40.00", order_id=order)
    assert (await reverse(db, shop, order)).result["points"] == 40
    assert (await earn(db, shop, alice.member_number, "25.00")).result["points"] == 25


async def test_concurrent_earns_never_pass_the_cap(db):
    shop = await make_partner(db, earn_rate="1")
    await rule(db, shop, "100 a day", cap_per_member_day=100)
    member = await enroll(db, shop)
    await earn(db, shop, member.member_number, "1.00")
    outcomes = await asyncio.gather(*(earn(db, shop, member.member_number, "7.00") for _ in range(30)))
    assert all(o.errors == [] for o in outcomes)
    assert sum(o.result["points"] for o in outcomes) == 99
    assert (await balance(db, member.id)).available == 100


async def test_the_day_and_month_are_the_partners(db):
    shop = await make_partner(db, earn_rate="1", time_zone="Europe/Paris")
    await rule(db, shop, "10 a day", cap_per_member_day=10)
    await rule(db, shop, "25 a month", cap_per_member_month=25)
    member = await enroll(db, shop)
    paris = ZoneInfo("Europe/Paris")
    day = (datetime.now(paris) + timedelta(days=2)).date()  # a Paris midnight after the rules exist
    if day.day == 1:
        day += timedelta(days=1)  # keep the purchases in one month
    midnight = datetime(day.year, day.month, day.day, tzinfo=paris)
    # 30 minutes either side of midnight in Paris: the same day in UTC, two days in Paris.
    clock.set_clock(lambda: midnight + timedelta(hours=31))
    try:
        before = await earn(
            db, shop, member.member_number, "10.00", occurred_at=midnight - timedelta(minutes=30)
        )
        after = await earn(
            db, shop, member.member_number, "10.00", occurred_at=midnight + timedelta(minutes=30)
        )
        assert [before.result["points"], after.result["points"]] == [10, 10]
        third = await earn(
            db, shop, member.member_number, "10.00", occurred_at=midnight + timedelta(hours=30)
        )
    finally:
        clock.set_clock(None)
    assert third.result["points"] == 5  # the month's cap: 25 in all
    assert items(third)[-1] == ("25 a month", -5)


def test_periods_follow_the_zone_through_a_dst_change():
    # 2026-03-29: Paris moves to summer time; that day has 23 hours.
    day, month = periods(datetime(2026, 3, 29, 12, tzinfo=UTC), "Europe/Paris")
    assert day == (datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC))
    assert month == (datetime(2026, 2, 28, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC))
    day, _ = periods(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "Europe/Paris")
    assert day[0] == datetime(2026, 12, 31, 23, tzinfo=UTC)


async def test_a_partner_time_zone_must_be_an_iana_name(db):
    try:
        await make_partner(db, time_zone="Mars/Olympus")
    except Exception as exc:  # DomainError
        errors = exc.errors
    assert [(e.code.value, e.field) for e in errors] == [("INVALID", "timeZone")]
    paris = await make_partner(db, time_zone="Europe/Paris")
    assert paris.id > 0
