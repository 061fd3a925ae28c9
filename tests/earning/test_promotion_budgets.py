"""Promotion budgets and per-member limits, exact under concurrency; refunds of promoted purchases;
previewEarn equals recordPurchase; the promotion cache across processes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

from services.earning import promotion_cache
from services.earning import service as earning
from shared import sql
from shared.database import Database
from shared.listening import Listener
from shared.money import Money
from shared.sql import Sql
from tests.earning.helpers import line, promo, promo_items, total
from tests.factories import earn, enroll, make_partner, unique

SPENT = Sql("SELECT spent_points FROM promotions WHERE id = :id")


async def _spent(db: Database, promotion_id: int) -> int:
    async with sql.connection(db) as conn:
        return await SPENT.fetchval(conn, id=promotion_id)


async def test_a_budget_for_50_awards_exactly_50_of_200_concurrent_earns(db):
    shop = await make_partner(db, earn_rate="1")
    people = [await enroll(db, shop) for _ in range(200)]
    budgeted = await promo(db, shop, "first 50", bonus_points=10, budget_points=500)
    outcomes = await asyncio.gather(*(earn(db, shop, m.member_number, "5.00") for m in people))
    points = sorted(o.result["points"] for o in outcomes)
    assert points == [5] * 150 + [15] * 50
    assert await _spent(db, budgeted.id) == 500
    assert (await earn(db, shop, people[0].member_number, "5.00")).result["points"] == 5


async def test_a_budget_too_small_for_an_item_lets_the_next_best_win(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    await promo(db, shop, "small", bonus_points=5)
    big = await promo(db, shop, "big", bonus_points=30, budget_points=40)
    assert promo_items(await earn(db, shop, member.member_number, "1.00")) == [(None, 1), ("big", 30)]
    # 10 left of 40: "big" no longer fits whole, and gives way to "small".
    assert promo_items(await earn(db, shop, member.member_number, "1.00")) == [(None, 1), ("small", 5)]
    assert await _spent(db, big.id) == 30


async def test_per_member_limit_counts_purchases_even_concurrently(db):
    shop = await make_partner(db, earn_rate="1")
    member, other = await enroll(db, shop), await enroll(db, shop)
    await promo(db, shop, "twice", bonus_points=10, per_member_limit=2)
    outcomes = await asyncio.gather(*(earn(db, shop, member.member_number, "1.00") for _ in range(8)))
    assert sorted(o.result["points"] for o in outcomes) == [1] * 6 + [11] * 2
    assert (await earn(db, shop, other.member_number, "1.00")).result["points"] == 11


async def test_a_full_refund_returns_the_budget_and_the_limit(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    once = await promo(db, shop, "once", bonus_points=10, per_member_limit=1, budget_points=100)
    order = unique("order")
    assert (await earn(db, shop, member.member_number, "5.00", order_id=order)).result["points"] == 15
    assert (await earn(db, shop, member.member_number, "5.00")).result["points"] == 5  # limit reached
    refund = await earning.reverse_purchase(
        db, shop.principal, idempotency_key=unique("key"), order_id=order, amount=None
    )
    assert refund.result["points"] == 15
    assert await _spent(db, once.id) == 0
    assert (await earn(db, shop, member.member_number, "5.00")).result["points"] == 15  # again


async def test_a_refund_by_line_takes_back_the_promotion_points_of_those_lines(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    await promo(db, shop, "triple coffee", multiplier=Decimal(3), categories=("coffee",), budget_points=1000)
    lines = (line("latte", "4.00", category="coffee", quantity=2), line("cake", "6.00"))
    order = unique("order")
    out = await earn(db, shop, member.member_number, total(*lines), lines=lines, order_id=order)
    assert out.result["points"] == 18  # 10 base + latte 4 x 2
    refund = await earning.reverse_purchase(
        db,
        shop.principal,
        idempotency_key=unique("key"),
        order_id=order,
        amount=None,
        lines=(earning.RefundLine("latte", 1),),
    )
    assert refund.result["points"] == 6  # one latte of two: half of its 12


async def test_preview_equals_record(db):
    shop = await make_partner(db, earn_rate="1.5")
    member = await enroll(db, shop)
    await promo(db, shop, "pct", percent_of_amount=Decimal("2.5"), stackable=True)
    await promo(db, shop, "budget", bonus_points=7, budget_points=100, per_member_limit=3)
    await promo(db, shop, "sku", multiplier=Decimal("1.5"), skus=("B",), stackable=True)
    for _ in range(4):
        lines = (line("A", "3.33"), line("B", "7.77", quantity=3))
        purchase = earning.PurchaseInput(
            idempotency_key=unique("key"),
            member_number=member.member_number,
            order_id=unique("order"),
            amount=Money(Decimal(total(*lines)), "EUR"),
            lines=lines,
        )
        preview = await earning.preview_earn(db, shop.principal, purchase)
        recorded = await earning.record_purchase(db, shop.principal, purchase)
        assert preview.points == recorded.result["points"]
        assert preview.detail == recorded.result["detail"]


@contextlib.asynccontextmanager
async def _listening(db: Database) -> AsyncIterator[None]:
    listener = Listener(db)
    await promotion_cache.subscribe(listener, db)
    await listener.start()
    try:
        yield
    finally:
        await listener.stop()


async def _until(condition, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 (nothing to wait on but the other connection)
            await asyncio.sleep(0.02)


async def test_a_promotion_change_reaches_another_process(db, database_url):
    other = Database(database_url, pool_size=2)
    try:
        async with _listening(db), _listening(other):
            shop = await make_partner(db, earn_rate="1")
            member = await enroll(db, shop)
            assert (await earn(other, shop, member.member_number, "10.00")).result["points"] == 10
            theirs = promotion_cache.promotions_cache(other)
            loads = theirs.loads
            assert (await earn(other, shop, member.member_number, "10.00")).result["points"] == 10
            assert theirs.loads == loads  # cached: no read per earn
            bonus = await promo(db, shop, "bonus", bonus_points=5)  # through the first process
            await _until(lambda: theirs.peek(shop.id) is None)
            assert (await earn(other, shop, member.member_number, "10.00")).result["points"] == 15
            await earning.archive_promotion(db, shop.principal, bonus.id)
            await _until(lambda: theirs.peek(shop.id) is None)
            assert (await earn(other, shop, member.member_number, "10.00")).result["points"] == 10
    finally:
        await other.dispose()


def test_a_coalition_notice_forgets_the_coalition_key():
    found = promotion_cache.PromotionsCache()
    found._promotions[0] = ()
    found._promotions[7] = ()
    found.on_changed("0")
    assert found.peek(0) is None and found.peek(7) == ()
    found.on_changed("junk")
    assert found.peek(7) is None
