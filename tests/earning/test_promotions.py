"""Promotions: live windows (RRULE, DST), each condition, each effect, stacking and priority."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.earning import service as earning
from services.earning.models import Channel
from shared.errors import DomainError
from shared.sql import connection
from tests.earning.helpers import line, promo, promo_items, total
from tests.factories import ADMIN, earn, enroll, make_partner


async def test_weekly_window_stays_wall_clock_across_dst(db):
    shop = await make_partner(db, time_zone="Europe/Paris")
    happy = await promo(
        db,
        shop,
        starts_at=datetime(2026, 3, 1, tzinfo=UTC),
        rule="FREQ=WEEKLY;BYDAY=TU;BYHOUR=14;BYMINUTE=0;BYSECOND=0",
        duration=timedelta(hours=3),
        bonus_points=5,
    )
    # Tuesday 24 March 2026, CET (UTC+1): 14:00-17:00 local is 13:00-16:00 UTC.
    assert not happy.live_at(datetime(2026, 3, 24, 12, 59, 59, tzinfo=UTC))
    assert happy.live_at(datetime(2026, 3, 24, 13, 0, tzinfo=UTC))
    assert happy.live_at(datetime(2026, 3, 24, 15, 59, 59, tzinfo=UTC))
    assert not happy.live_at(datetime(2026, 3, 24, 16, 0, tzinfo=UTC))
    # Tuesday 31 March 2026, after the change to CEST (UTC+2): 12:00-15:00 UTC.
    assert not happy.live_at(datetime(2026, 3, 31, 11, 59, 59, tzinfo=UTC))
    assert happy.live_at(datetime(2026, 3, 31, 12, 0, tzinfo=UTC))
    assert happy.live_at(datetime(2026, 3, 31, 14, 59, 59, tzinfo=UTC))
    assert not happy.live_at(datetime(2026, 3, 31, 15, 0, tzinfo=UTC))
    # Not on a Wednesday, and back in winter time in November (13:00-16:00 UTC).
    assert not happy.live_at(datetime(2026, 4, 1, 13, 0, tzinfo=UTC))
    assert happy.live_at(datetime(2026, 11, 3, 13, 30, tzinfo=UTC))
    assert not happy.live_at(datetime(2026, 11, 3, 12, 30, tzinfo=UTC))


async def test_window_edges_and_the_rrule_until(db):
    shop = await make_partner(db)
    start = datetime(2026, 6, 1, 10, tzinfo=UTC)
    p = await promo(db, shop, starts_at=start, ends_at=start + timedelta(days=2), bonus_points=1)
    assert not p.live_at(start - timedelta(microseconds=1))
    assert p.live_at(start) and p.live_at(start + timedelta(days=2, microseconds=-1))
    assert not p.live_at(start + timedelta(days=2))
    daily = await promo(
        db, shop, starts_at=start, rule="FREQ=DAILY;COUNT=2", duration=timedelta(hours=1), bonus_points=1
    )
    assert daily.live_at(start + timedelta(days=1, minutes=30))
    assert not daily.live_at(start + timedelta(days=2, minutes=30))  # COUNT=2: over


async def test_bad_rrule_and_effects_are_user_errors_naming_the_field(db):
    shop = await make_partner(db)
    with pytest.raises(DomainError) as bad:
        await promo(db, shop, rule="FREQ=SOMETIMES", duration=timedelta(hours=1), bonus_points=1)
    assert [e.field for e in bad.value.errors] == ["recurrence.rule"]
    assert "FREQ" in bad.value.errors[0].message or "SOMETIMES" in bad.value.errors[0].message
    with pytest.raises(DomainError) as two:
        await promo(db, shop, bonus_points=1, multiplier=Decimal(2))
    assert [e.field for e in two.value.errors] == ["effect"]
    with pytest.raises(DomainError) as none:
        await promo(db, shop)
    assert [e.field for e in none.value.errors] == ["effect"]


async def test_each_effect(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    double = await promo(db, shop, "double", multiplier=Decimal(2), skus=("A",))
    out = await earn(db, shop, member.member_number, "30.00", lines=(line("A", "10.00"), line("B", "20.00")))
    assert out.result["points"] == 40  # 30 base + A's 10 x (2 - 1)
    assert promo_items(out) == [(None, 30), ("double", 10)]
    await earning.archive_promotion(db, shop.principal, double.id)
    await promo(db, shop, "bonus", bonus_points=50)
    out = await earn(db, shop, member.member_number, "10.00")
    assert (out.result["points"], promo_items(out)) == (60, [(None, 10), ("bonus", 50)])
    assert sum(ln["points"] for ln in out.result["detail"]["lines"]) == 60


async def test_percent_of_amount_rounds_once_per_purchase(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    await promo(db, shop, "5 %", percent_of_amount=Decimal(5))
    out = await earn(db, shop, member.member_number, "12.90")  # 12.90 + 0.645 = 13.545 -> 13
    assert out.result["points"] == 13
    assert sum(p for _, p in promo_items(out)) == 13


async def test_conditions_min_spend_categories_channel_code(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    await promo(db, shop, "big", bonus_points=7, min_spend=Decimal("50"), stackable=True)
    await promo(db, shop, "coffee", multiplier=Decimal(3), categories=("coffee",), stackable=True)
    await promo(db, shop, "app", bonus_points=100, channels=(Channel.APP,), stackable=True)
    small = await earn(db, shop, member.member_number, "49.99")
    assert promo_items(small) == [(None, 49)]
    big = await earn(db, shop, member.member_number, "50.00")
    assert promo_items(big) == [(None, 50), ("big", 7)]
    lines = (line("latte", "4.00", category="coffee"), line("cake", "6.00", category="food"))
    out = await earn(db, shop, member.member_number, total(*lines), lines=lines)
    assert promo_items(out) == [(None, 10), ("coffee", 8)]
    assert [ln["points"] for ln in out.result["detail"]["lines"]] == [12, 6]  # extras follow the line
    app = await earn(db, shop, member.member_number, "1.00", channel=Channel.APP)
    store = await earn(db, shop, member.member_number, "1.00", channel=Channel.STORE)
    assert (app.result["points"], store.result["points"]) == (101, 1)


async def test_a_code_promotion_applies_only_when_unlocked(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    coded = await promo(db, shop, "code", bonus_points=20, requires_code=True)
    plain = earning.PurchaseInput(
        idempotency_key="k-" + member.member_number, member_number=member.member_number,
        order_id="o-" + member.member_number, amount=_eur("10.00"),
    )  # fmt: skip
    assert (await earning.record_purchase(db, shop.principal, plain)).result["points"] == 10
    unlocked = earning.PurchaseInput(
        idempotency_key="k2-" + member.member_number, member_number=member.member_number,
        order_id="o2-" + member.member_number, amount=_eur("10.00"), unlocked=frozenset({coded.id}),
    )  # fmt: skip
    assert (await earning.record_purchase(db, shop.principal, unlocked)).result["points"] == 30


async def test_first_purchase_and_not_seen_for_days(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    now = datetime.now(UTC)
    since = now - timedelta(days=60)
    await promo(db, shop, "welcome", bonus_points=100, first_purchase=True, stackable=True, starts_at=since)
    await promo(db, shop, "come back", bonus_points=30, inactive_days=30, stackable=True, starts_at=since)
    first = await earn(db, shop, member.member_number, "10.00", occurred_at=now - timedelta(days=40))
    assert promo_items(first) == [(None, 10), ("welcome", 100), ("come back", 30)]
    back = await earn(db, shop, member.member_number, "10.00")  # last seen 40 days ago
    assert promo_items(back) == [(None, 10), ("come back", 30)]
    again = await earn(db, shop, member.member_number, "10.00")  # seen just now
    assert promo_items(again) == [(None, 10)]


async def test_stacking_best_exclusive_then_priority_then_newer(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    await promo(db, shop, "ten", bonus_points=10, priority=9)
    twenty = await promo(db, shop, "twenty", bonus_points=20)
    await promo(db, shop, "stack", bonus_points=1, stackable=True)
    out = await earn(db, shop, member.member_number, "1.00")
    assert promo_items(out) == [(None, 1), ("twenty", 20), ("stack", 1)]  # most points wins
    await earning.archive_promotion(db, shop.principal, twenty.id)
    await promo(db, shop, "ten low", bonus_points=10, priority=1)
    out = await earn(db, shop, member.member_number, "1.00")
    assert promo_items(out) == [(None, 1), ("ten", 10), ("stack", 1)]  # equal: higher priority
    await promo(db, shop, "ten newer", bonus_points=10, priority=9)
    out = await earn(db, shop, member.member_number, "1.00")
    assert promo_items(out) == [(None, 1), ("stack", 1), ("ten newer", 10)]  # equal again: newer id


async def test_a_coalition_promotion_is_marked_and_counted(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    category = "coalition-only-" + member.member_number  # no other test's purchase matches it
    weekend = await earning.create_promotion(
        db,
        ADMIN,
        partner_id=None,
        terms=earning.PromotionTerms(name="everywhere", multiplier=Decimal(2), categories=(category,)),
    )
    try:
        lines = (line("x", "10.00", category=category), line("y", "5.00"))
        out = await earn(db, shop, member.member_number, total(*lines), lines=lines)
        assert out.result["points"] == 25
        item = out.result["detail"]["items"][-1]
        assert item["promotion"] == {"id": weekend.id, "name": "everywhere", "coalition": True}
        assert out.result["detail"]["coalition_points"] == 10 <= out.result["points"]
        async with connection(db) as conn:  # the ledger books the coalition's 10 in its own lot
            lots = await conn.fetch(
                "SELECT p.kind, l.points FROM lots l JOIN partners p ON p.id = l.issuing_partner_id"
                " WHERE l.member_id = $1 ORDER BY l.id",
                member.id,
            )
        assert [(r["kind"], r["points"]) for r in lots] == [("PARTNER", 15), ("COALITION", 10)]
        with pytest.raises(DomainError):  # a partner cannot archive the coalition's promotion
            await earning.archive_promotion(db, shop.principal, weekend.id)
    finally:
        await earning.archive_promotion(db, ADMIN, weekend.id)


async def test_min_spend_rule_stops_promotions_and_caps_include_them(db):
    from tests.earning.helpers import rule

    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    await promo(db, shop, "bonus", bonus_points=50)
    await rule(db, shop, "min 5", min_spend="5")
    assert (await earn(db, shop, member.member_number, "4.00")).result["points"] == 0
    await rule(db, shop, "cap", cap_per_purchase=20)
    out = await earn(db, shop, member.member_number, "10.00")
    assert out.result["points"] == 20 and sum(p for _, p in promo_items(out)) == 20


def _eur(amount: str):
    from shared.money import Money

    return Money(Decimal(amount), "EUR")
