"""recordPurchases through the earning engine: a batch at a partner with earn rules, purchases with
lines, promo codes and channels books exactly what the same purchases sent one by one through
recordPurchase book (points, breakdown documents, lots, stored answers), set-based; a partner with a
cap per member gets the same points as one by one, whatever the order of the batch."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from services.earning import service as earning
from services.earning.models import Channel
from services.ledger import service as ledger
from shared import clock
from shared.database import Database
from shared.errors import DomainError
from shared.sql import connection
from tests.earning.helpers import line, rule, total
from tests.factories import SeededPartner, earn_batch, enroll, make_partner, purchase, violations
from tests.sql_statements import sql_statements

NOW = datetime.fromisoformat("2026-11-20T12:00:00+00:00")


async def _single(db: Database, partner: SeededPartner, item: earning.PurchaseInput) -> ledger.Outcome:
    """recordPurchase as its resolver calls it: bad input it raises becomes userErrors."""
    try:
        return await earning.record_purchase(db, partner.principal, item)
    except DomainError as exc:
        return ledger.Outcome(None, exc.errors)


def named(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    """The document with each rule named by its name: rule ids differ between the twin worlds."""
    if detail is None:
        return None
    items = [{**i, "rule": i["rule"]["name"] if i["rule"] else None} for i in detail["items"]]
    return {**detail, "items": items}


def answers(outcomes: list[ledger.Outcome]) -> list[Any]:
    """Points, breakdown documents and userErrors, without the ids that differ between worlds."""
    return [
        (
            o.result["points"] if o.result else None,
            named(o.result["detail"]) if o.result else None,
            [(e.code, e.field) for e in o.errors],
        )
        for o in outcomes
    ]


async def stored(db: Database, partner: SeededPartner, member_ids: list[int]) -> dict[str, Any]:
    role = {mid: f"m{i}" for i, mid in enumerate(member_ids)}
    async with connection(db) as conn:
        purchases = await conn.fetch(
            "SELECT order_id, member_id, amount, points_earned, earn_detail::text AS detail,"
            " lot_id IS NOT NULL AS has_lot FROM purchases WHERE partner_id = $1",
            partner.id,
        )
        lots = await conn.fetch(
            "SELECT member_id, points, remaining FROM lots WHERE issuing_partner_id = $1", partner.id
        )
        wallets = await conn.fetch(
            "SELECT member_id, balance FROM wallets WHERE member_id = ANY($1)", member_ids
        )
        keys = await conn.fetch(
            "SELECT key, response::text AS response FROM idempotency_keys WHERE client_id = $1",
            partner.client_id,
        )
    return {
        "purchases": sorted(
            (
                r["order_id"],
                role[r["member_id"]],
                r["amount"],
                r["points_earned"],
                json.dumps(named(json.loads(r["detail"])) if r["detail"] else None, sort_keys=True),
                r["has_lot"],
            )
            for r in purchases
        ),
        "lots": sorted((role[r["member_id"]], r["points"], r["remaining"]) for r in lots),
        "wallets": sorted((role[r["member_id"]], r["balance"]) for r in wallets),
        # Answers hold transaction ids (differ between the worlds): compare what else they say.
        "keys": sorted((r["key"], '"detail"' in r["response"], '"errors"' in r["response"]) for r in keys),
    }


async def rules_world(db: Database) -> tuple[SeededPartner, list[Any]]:
    shop = await make_partner(db, earn_rate="1")
    await rule(db, shop, "double coffee", sku="COFFEE", multiplier="2")
    await rule(db, shop, "5 a book", category="books", points_per_unit="5")
    await rule(db, shop, "no tobacco", sku="TOBACCO", multiplier="0")
    await rule(db, shop, "spend 2", min_spend="2")
    await rule(db, shop, "at most 200", cap_per_purchase=200)
    people = [await enroll(db, shop) for _ in range(3)]
    return shop, people


def rules_purchases(people: list[Any]) -> list[earning.PurchaseInput]:
    m = [p.member_number for p in people]
    coffee = (line("COFFEE", "3.40"), line("CAKE", "2.95"))
    books = (line("NOVEL", "12.00", category="books", quantity=2), line("TOBACCO", "9.00"))
    big = (line("BIKE", "450.00"), line("COFFEE", "3.40"))
    return [
        purchase(m[0], total(*coffee), key="k1", order_id="o1", lines=coffee),  # 6.80 + 2.95 = 9
        purchase(m[1], total(*books), key="k2", order_id="o2", lines=books, channel=Channel.ONLINE),  # 10
        purchase(m[0], "1.50", key="k3", order_id="o3"),  # below the minimum spend: 0
        purchase(m[2], total(*big), key="k4", order_id="o4", lines=big),  # capped at 200
        purchase(m[1], "12.90", key="k5", order_id="o5", promo_codes=("SUMMER",)),  # 12, PROMO_CODE_INVALID
        purchase(m[2], "7.00", key="k6", order_id="o6", lines=coffee),  # AMOUNT_MISMATCH: not stored
        purchase(m[0], total(*coffee), key="k1", order_id="o1", lines=coffee),  # replays k1
        purchase(m[0], total(*books), key="k1", order_id="o1", lines=books),  # k1, other lines: REUSED
        purchase(m[2], "20.00", key="k9", order_id="o9", channel=Channel.STORE),  # 20, a document
        purchase(m[1], "8.00", key="k10", order_id="o10"),  # plain: no document
    ]


async def test_a_batch_with_rules_and_lines_books_what_one_by_one_books(db):
    clock.set_clock(lambda: NOW)
    try:
        singles_shop, singles_people = await rules_world(db)
        batch_shop, batch_people = await rules_world(db)
        one_by_one = [await _single(db, singles_shop, p) for p in rules_purchases(singles_people)]
        batched = await earn_batch(db, batch_shop, rules_purchases(batch_people))
        singles_books = await stored(db, singles_shop, [p.id for p in singles_people])
        batch_books = await stored(db, batch_shop, [p.id for p in batch_people])
    finally:
        clock.set_clock(None)
    assert answers(batched) == answers(one_by_one)
    for part in singles_books:
        assert (part, batch_books[part]) == (part, singles_books[part])
    assert [o.result["points"] if o.result else None for o in batched] == [
        9, 10, 0, 200, 12, None, 9, None, 20, 8,
    ]  # fmt: skip
    assert [[e.code for e in o.errors] for o in batched] == [
        [], [], [], [], ["PROMO_CODE_INVALID"], ["AMOUNT_MISMATCH"], [], ["IDEMPOTENCY_KEY_REUSED"], [], [],
    ]  # fmt: skip
    books_lines = batched[1].result["detail"]["lines"]
    assert [(ln["sku"], ln["points"]) for ln in books_lines] == [("NOVEL", 10), ("TOBACCO", 0)]
    assert batched[1].result["detail"]["channel"] == "ONLINE"
    assert batched[9].result["detail"] is None
    assert await violations(db) == []


async def test_a_partner_with_rules_still_books_a_batch_set_based(db):
    shop, people = await rules_world(db)
    coffee = (line("COFFEE", "3.40"), line("CAKE", "2.95"))
    warm = [purchase(p.member_number, total(*coffee), lines=coffee) for p in people]
    await earn_batch(db, shop, warm)  # opens the wallets, warms the caches
    batch = [purchase(people[i % 3].member_number, total(*coffee), lines=coffee) for i in range(60)]
    async with sql_statements(db) as statements:
        outcomes = await earn_batch(db, shop, batch)
    assert [o.result["points"] for o in outcomes] == [9] * 60
    # The same few statements as a flat partner's batch, whatever its size: no earn of its own each.
    assert len(statements) < 20, statements
    async with connection(db) as conn:
        documents = await conn.fetchval(
            "SELECT count(*) FROM purchases WHERE partner_id = $1"
            " AND earn_detail -> 'lines' -> 0 ->> 'sku' = 'COFFEE'",
            shop.id,
        )
    assert documents == 63


async def caps_world(db: Database) -> tuple[SeededPartner, list[Any]]:
    """A cap per member and day that comes into force at NOW: purchases before it are uncapped."""
    shop = await make_partner(db, earn_rate="1")
    await rule(db, shop, "50 a day", cap_per_member_day=50)
    return shop, [await enroll(db, shop) for _ in range(2)]


def caps_purchases(people: list[Any]) -> list[earning.PurchaseInput]:
    a, b = people[0].member_number, people[1].member_number
    after, before = NOW + timedelta(minutes=30), NOW - timedelta(minutes=30)
    return [
        purchase(a, "30", key="c1", order_id="c1", occurred_at=after),  # 30 (capped path)
        purchase(a, "40", key="c2", order_id="c2", occurred_at=before),  # 40: no cap in force yet
        purchase(a, "30", key="c3", order_id="c3", occurred_at=after),  # 50 - (30 + 40): 0
        purchase(b, "45", key="c4", order_id="c4", occurred_at=after),  # 45
        purchase(b, "45", key="c5", order_id="c5", occurred_at=after),  # 5
        purchase(b, "10", key="c6", order_id="c6", occurred_at=before),  # 10
    ]


async def test_caps_per_member_in_a_batch_earn_what_one_by_one_earns(db):
    clock.set_clock(lambda: NOW)
    try:
        singles_shop, singles_people = await caps_world(db)
        batch_shop, batch_people = await caps_world(db)
    finally:
        clock.set_clock(None)
    clock.set_clock(lambda: NOW + timedelta(hours=1))
    try:
        one_by_one = [await _single(db, singles_shop, p) for p in caps_purchases(singles_people)]
        batched = await earn_batch(db, batch_shop, caps_purchases(batch_people))
    finally:
        clock.set_clock(None)
    assert answers(batched) == answers(one_by_one)
    assert [o.result["points"] for o in batched] == [30, 40, 0, 45, 5, 10]
    assert await stored(db, batch_shop, [p.id for p in batch_people]) == await stored(
        db, singles_shop, [p.id for p in singles_people]
    )
    assert await violations(db) == []
