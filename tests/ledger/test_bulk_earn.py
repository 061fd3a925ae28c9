"""Bulk earning (`services.ledger.bulk_earn`, reached through the earning service's
`record_purchases` as recordPurchases reaches it) on the real ledger: a batch books exactly what the same
purchases sent one by one book, per-item failures stay per item, and concurrent batches and single
earns on shared members neither deadlock nor lose an update."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.earning import service as earning
from services.ledger import service as ledger
from services.members.service import MemberView
from shared import clock
from shared.database import Database
from shared.errors import DomainError
from shared.ids import new_member_number
from shared.settings import get_settings
from shared.sql import connection
from tests.factories import (
    SeededPartner,
    balance,
    earn,
    earn_batch,
    enroll,
    make_partner,
    purchase,
    redeem,
    reverse,
    violations,
)

NOW = datetime.fromisoformat("2026-11-20T10:00:00+00:00")


@dataclass
class World:
    """A partner, a neighbour partner and six members, built the same way twice: one world gets
    the purchases one by one, its twin as one batch."""

    partner: SeededPartner
    other: SeededPartner
    members: list[MemberView]
    stranger: str  # a valid member number nobody has


async def build_world(db: Database) -> World:
    partner = await make_partner(db, earn_rate="1", return_window_days=2)
    other = await make_partner(db)
    people = [await enroll(db, partner) for _ in range(4)] + [await enroll(db, other) for _ in range(2)]
    # Member 0 earned before under "pre-key"; member 3 owes 100 points (a refund after a spend).
    await earn(
        db, partner, people[0].member_number, "10", order_id="pre-order", key="pre-key",
        occurred_at=NOW - timedelta(days=1),
    )  # fmt: skip
    await earn(
        db,
        partner,
        people[3].member_number,
        "100",
        order_id="debt-order",
        occurred_at=NOW - timedelta(days=5),
    )
    assert (await redeem(db, partner, people[3].member_number, 100)).errors == []
    assert (await reverse(db, partner, "debt-order")).errors == []
    return World(partner, other, people, new_member_number())


def purchases_for(world: World) -> list[earning.PurchaseInput]:
    m = [p.member_number for p in world.members]
    past = NOW - timedelta(days=3)
    return [
        purchase(m[0], "12.90", key="k1", order_id="o1"),
        purchase(m[1], "5.00", key="k2", order_id="o2"),
        purchase(m[0], "7.49", key="k3", order_id="o3", occurred_at=past),  # available at once
        purchase(m[2], "20", key="k4", order_id="o4"),  # first earn: opens the wallet
        purchase(m[4], "30", key="k5", order_id="o5"),  # known at the other partner: gets linked
        purchase(world.stranger, "10", key="k6", order_id="o6"),  # MEMBER_NOT_FOUND
        purchase(m[1], "9", key="k7", order_id="pre-order"),  # DUPLICATE_ORDER (recorded before)
        purchase(m[0], "10", key="pre-key", order_id="pre-order", occurred_at=NOW - timedelta(days=1)),
        purchase(m[1], "11", key="pre-key", order_id="o9"),  # IDEMPOTENCY_KEY_REUSED
        purchase(m[1], "4", key="k10", order_id="o2"),  # DUPLICATE_ORDER (earlier in the batch)
        purchase(m[0], "12.90", key="k1", order_id="o1"),  # the batch's own first item, again
        purchase(m[1], "3", key="k12", order_id="o12", currency="USD"),  # CURRENCY_MISMATCH
        purchase(m[1], "0", key="k13", order_id="o13"),  # INVALID_AMOUNT
        purchase(m[5], "0.50", key="k14", order_id="o14"),  # 0 points: recorded, not linked
        purchase(m[3], "40", key="k15", order_id="o15"),  # repays 40 of the debt
        purchase(m[3], "70", key="k16", order_id="o16"),  # repays the other 60, keeps 10
        purchase(m[2], "1", key="k17", order_id="o17", occurred_at=NOW + timedelta(hours=1)),  # IN_FUTURE
        purchase(m[2], "2.5", key="k18", order_id="o18"),
    ]


def normalised(outcomes: list[ledger.Outcome]) -> list[Any]:
    """Answers with transaction ids replaced by their order of first appearance."""
    ids: dict[Any, int] = {}
    out = []
    for o in outcomes:
        result = dict(o.result) if o.result else None
        if result is not None:
            result["transaction_id"] = ids.setdefault(result["transaction_id"], len(ids))
            result.pop("partner_id")
        out.append((result, [(e.code, e.field, e.message) for e in o.errors]))
    return out


async def books(db: Database, world: World) -> dict[str, Any]:
    """Everything the ledger holds about the world, with ids replaced by roles."""
    member_ids = [p.id for p in world.members]
    role = {mid: f"m{i}" for i, mid in enumerate(member_ids)}
    partners = {world.partner.id: "partner", world.other.id: "other"}
    async with connection(db) as conn:
        wallets = await conn.fetch(
            "SELECT member_id, balance, debt FROM wallets WHERE member_id = ANY($1)", member_ids
        )
        lots = await conn.fetch(
            "SELECT member_id, issuing_partner_id, points, remaining, earned_at, available_at, expires_at,"
            " activated_at FROM lots WHERE member_id = ANY($1)",
            member_ids,
        )
        postings = await conn.fetch(
            "SELECT a.kind, a.member_id, a.partner_id, e.kind AS entry, count(*) AS n, sum(p.amount) AS total"
            " FROM postings p JOIN ledger_accounts a ON a.id = p.account_id"
            " JOIN journal_entries e ON e.id = p.entry_id"
            " WHERE e.member_id = ANY($1) GROUP BY 1, 2, 3, 4",
            member_ids,
        )
        entries = await conn.fetch(
            "SELECT member_id, kind, points, order_id, occurred_at FROM journal_entries"
            " WHERE member_id = ANY($1)",
            member_ids,
        )
        consumptions = await conn.fetch(
            "SELECT member_id, kind, points, counterparty_partner_id FROM lot_consumptions"
            " WHERE member_id = ANY($1)",
            member_ids,
        )
        debts = await conn.fetch(
            "SELECT member_id, remaining FROM member_debts WHERE member_id = ANY($1)", member_ids
        )
        purchases = await conn.fetch(
            "SELECT order_id, member_id, amount, currency, points_earned, occurred_at,"
            " lot_id IS NOT NULL AS has_lot FROM purchases WHERE partner_id = $1",
            world.partner.id,
        )
        links = await conn.fetch(
            "SELECT member_id, partner_id FROM enrollments WHERE member_id = ANY($1)", member_ids
        )
        keys = await conn.fetch(
            "SELECT key, response ? 'ok' AS ok, response -> 'errors' AS errors"
            " FROM idempotency_keys WHERE client_id = $1",
            world.partner.client_id,
        )
    return {
        "wallets": sorted((role[r["member_id"]], r["balance"], r["debt"]) for r in wallets),
        "balances": [await balance(db, mid) for mid in member_ids],
        "lots": sorted(
            (
                role[r["member_id"]],
                partners[r["issuing_partner_id"]],
                r["points"],
                r["remaining"],
                r["earned_at"],
                r["available_at"],
                r["expires_at"],
                r["activated_at"],
            )
            for r in lots
        ),
        "postings": sorted(
            (
                r["kind"],
                role.get(r["member_id"]),
                partners.get(r["partner_id"]),
                r["entry"],
                r["n"],
                r["total"],
            )
            for r in postings
        ),
        "entries": sorted(
            # The prelude's spend has a random order id: the rest is fixed.
            (
                role[r["member_id"]],
                r["kind"],
                r["points"],
                r["order_id"] if r["kind"] == "EARN" else "",
                r["occurred_at"],
            )
            for r in entries
        ),
        "consumptions": sorted(
            (role[r["member_id"]], r["kind"], r["points"], partners.get(r["counterparty_partner_id"], ""))
            for r in consumptions
        ),
        "debts": sorted((role[r["member_id"]], r["remaining"]) for r in debts),
        "purchases": sorted(
            (
                r["order_id"],
                role[r["member_id"]],
                r["amount"],
                r["currency"],
                r["points_earned"],
                r["occurred_at"],
                r["has_lot"],
            )
            for r in purchases
        ),
        "links": sorted((role[r["member_id"]], partners[r["partner_id"]]) for r in links),
        # Request hashes name the members, whose numbers differ between the twins.
        "keys": sorted(
            (r["key"] if not r["key"].startswith("key-") else "", r["ok"], r["errors"] or "") for r in keys
        ),
    }


async def test_a_batch_books_exactly_what_the_same_purchases_one_by_one_book(db):
    clock.set_clock(lambda: NOW)
    try:
        singles_world, batch_world = await build_world(db), await build_world(db)
        # The twin worlds differ only in ids; their member numbers differ, so the purchases are
        # built for each from its own members.
        one_by_one = [await _single(db, singles_world.partner, item) for item in purchases_for(singles_world)]
        batched = await earn_batch(db, batch_world.partner, purchases_for(batch_world))
        singles_books, batch_books = await books(db, singles_world), await books(db, batch_world)
    finally:
        clock.set_clock(None)

    assert normalised(batched) == normalised(one_by_one)
    for part in singles_books:
        assert (part, batch_books[part]) == (part, singles_books[part])
    codes = [[e.code for e in o.errors] for o in batched]
    assert codes == [
        [], [], [], [], [], ["MEMBER_NOT_FOUND"], ["DUPLICATE_ORDER"], [], ["IDEMPOTENCY_KEY_REUSED"],
        ["DUPLICATE_ORDER"], [], ["CURRENCY_MISMATCH"], ["INVALID_AMOUNT"], [], [], [], ["IN_FUTURE"], [],
    ]  # fmt: skip
    assert [o.result["points"] for o in batched if o.result] == [12, 5, 7, 20, 30, 10, 12, 0, 40, 70, 2]
    assert batched[10].result == batched[0].result  # the repeated key replays the batch's own answer
    assert batch_books["debts"] == [("m3", 0)]
    assert ("m4", "partner") in batch_books["links"] and ("m5", "partner") not in batch_books["links"]
    assert await violations(db) == []


async def _single(db: Database, partner: SeededPartner, item: earning.PurchaseInput) -> ledger.Outcome:
    """recordPurchase as its resolver calls it: bad input it raises becomes userErrors."""
    try:
        return await earning.record_purchase(db, partner.principal, item)
    except DomainError as exc:
        return ledger.Outcome(None, exc.errors)


async def test_a_replayed_batch_answers_the_same_and_moves_nothing(db):
    partner = await make_partner(db)
    people = [await enroll(db, partner) for _ in range(3)]
    items = [purchase(p.member_number, "10") for p in people for _ in range(3)]
    first = await earn_batch(db, partner, items)
    again = await earn_batch(db, partner, items)
    assert [o.result for o in again] == [o.result for o in first]
    assert all(o.errors == [] for o in first)
    assert [(await balance(db, p.id)).available for p in people] == [30, 30, 30]
    # A retry of one of them through recordPurchase replays it too: the keys are shared.
    single = await earn(
        db, partner, people[0].member_number, "10", key=items[0].idempotency_key, order_id=items[0].order_id
    )
    assert single.result == first[0].result
    assert (await balance(db, people[0].id)).available == 30


async def test_too_many_purchases_are_refused_naming_the_field(db):
    partner = await make_partner(db)
    member = await enroll(db, partner)
    try:
        await earn_batch(
            db, partner, [purchase(member.member_number, "1") for _ in range(ledger.MAX_BATCH + 1)]
        )
    except DomainError as exc:
        assert [(e.code, e.field) for e in exc.errors] == [("BATCH_TOO_LARGE", "purchases")]
    else:
        raise AssertionError("a batch over the limit was accepted")
    assert (await balance(db, member.id)).available == 0


async def test_a_batch_probes_no_more_unknown_numbers_than_the_miss_limit(db):
    partner = await make_partner(db)
    member = await enroll(db, partner)
    limit = get_settings().member_miss_limit
    items = [purchase(new_member_number(), "1") for _ in range(limit)] + [purchase(member.member_number, "5")]
    outcomes = await earn_batch(db, partner, items)
    assert [o.errors[0].code for o in outcomes[:limit]] == ["MEMBER_NOT_FOUND"] * limit
    # The limit is used up: the known member's purchase is refused exactly like an unknown one.
    assert [(e.code, e.field) for e in outcomes[limit].errors] == [("LOOKUP_LIMIT_REACHED", "memberNumber")]
    assert (await balance(db, member.id)).available == 0


async def test_concurrent_batches_and_single_earns_on_shared_members_lose_nothing(db):
    partner = await make_partner(db)
    people = [await enroll(db, partner) for _ in range(12)]
    rng = random.Random(11)
    expected = {p.id: 0 for p in people}

    def batch() -> list[earning.PurchaseInput]:
        chosen = [rng.choice(people) for _ in range(150)]
        items = []
        for p in chosen:
            points = rng.randint(1, 50)
            expected[p.id] += points
            items.append(purchase(p.member_number, str(points)))
        return items

    singles = []
    for _ in range(30):
        p = rng.choice(people)
        points = rng.randint(1, 50)
        expected[p.id] += points
        singles.append(earn(db, partner, p.member_number, str(points)))
    batches = [earn_batch(db, partner, batch()) for _ in range(4)]
    answers = await asyncio.wait_for(asyncio.gather(*batches, *singles), timeout=120)
    for answer in answers:
        outcomes = answer if isinstance(answer, list) else [answer]
        assert all(o.errors == [] for o in outcomes)
    assert {p.id: (await balance(db, p.id)).available for p in people} == expected
    assert await violations(db) == []


async def test_the_same_batch_sent_twice_at_once_records_each_purchase_once(db):
    partner = await make_partner(db)
    people = [await enroll(db, partner) for _ in range(5)]
    items = [purchase(p.member_number, "10") for p in people for _ in range(4)]
    first, second = await asyncio.gather(earn_batch(db, partner, items), earn_batch(db, partner, items))
    assert [o.result for o in first] == [o.result for o in second]
    assert all(o.errors == [] for o in first)
    # One of them wrote, the other waited for its wallet locks and replayed every answer.
    assert sorted([all(o.replayed for o in first), all(o.replayed for o in second)]) == [False, True]
    assert [(await balance(db, p.id)).available for p in people] == [40] * 5
    assert await violations(db) == []
