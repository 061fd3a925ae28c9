"""Coalition-issued points in the ledger: an earn whose decision gives the coalition a share books
one entry, two lots (the partner's and the coalition's, same dates) and the split postings; refunds
take back exactly what was earned, split proportionally (the remainder the partner's); expiry and
erasure release a coalition lot to the coalition's breakage; the audit stays clean throughout."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from services.gateway.worker import run_job
from services.ledger import erasure
from services.ledger.coalition_earn import refund_share
from services.ledger.scheduled import expire_due_lots
from services.partners import coalition
from shared import clock, sql
from shared.database import Database
from tests.factories import (
    ADMIN,
    balance,
    earn,
    earn_with_coalition,
    enroll,
    link,
    make_partner,
    redeem,
    reverse,
    unique,
    violations,
)

TWENTY_FIVE_MONTHS = timedelta(days=25 * 31)


async def _rows(db: Database, query: str, **params: object) -> list[tuple[object, ...]]:
    async with db.sessions() as session:
        return [tuple(r) for r in (await session.execute(text(query), params)).all()]


async def _coalition_id(db: Database) -> int:
    async with sql.connection(db) as conn:
        return await coalition.coalition_issuer_id(conn)


async def _issuance(db: Database, partner_id: int) -> int:
    rows = await _rows(
        db,
        "SELECT COALESCE(SUM(p.amount), 0) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id"
        " WHERE a.kind = :k AND a.partner_id = :p",
        k="PARTNER_ISSUANCE",
        p=partner_id,
    )
    return int(rows[0][0])


async def _member_breakage(db: Database, member_id: int) -> dict[int, int]:
    """What the member's expiries and forfeitures posted to each issuer's breakage account."""
    rows = await _rows(
        db,
        "SELECT a.partner_id, SUM(p.amount) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id"
        " JOIN journal_entries e ON e.id = p.entry_id"
        " WHERE a.kind = 'PARTNER_BREAKAGE' AND e.member_id = :m GROUP BY 1",
        m=member_id,
    )
    return {int(p): int(n) for p, n in rows}


async def test_a_coalition_earn_is_one_entry_two_lots_and_split_postings(db: Database) -> None:
    cafe = await make_partner(db, return_window_days=14)
    member = await enroll(db, cafe)
    order = unique("order")
    c_before = await _issuance(db, await _coalition_id(db))
    earned = await earn_with_coalition(db, cafe, member.member_number, 30, 10, order_id=order)
    assert earned.errors == [] and earned.result["points"] == 30
    c_id = await _coalition_id(db)

    entries = await _rows(
        db, "SELECT id, kind, points, coalition_points FROM journal_entries WHERE member_id = :m", m=member.id
    )
    assert [(k, p, c) for _, k, p, c in entries] == [("EARN", 30, 10)]
    entry_id = entries[0][0]
    lots = await _rows(
        db,
        "SELECT issuing_partner_id, points, remaining, earned_at, available_at, expires_at FROM lots"
        " WHERE earn_entry_id = :e ORDER BY points DESC",
        e=entry_id,
    )
    assert [(i, p, r) for i, p, r, *_ in lots] == [(cafe.id, 20, 20), (c_id, 10, 10)]
    assert lots[0][3:] == lots[1][3:]  # same earned, available and expiry dates
    postings = await _rows(
        db,
        "SELECT a.kind, a.partner_id, a.member_id IS NOT NULL, p.amount FROM postings p"
        " JOIN ledger_accounts a ON a.id = p.account_id WHERE p.entry_id = :e ORDER BY p.amount",
        e=entry_id,
    )
    assert sorted(postings, key=str) == sorted(
        [
            ("PARTNER_ISSUANCE", cafe.id, False, -20),
            ("PARTNER_ISSUANCE", c_id, False, -10),
            ("MEMBER_WALLET", None, True, 30),
        ],
        key=str,
    )
    assert await _issuance(db, c_id) - c_before == -10
    purchase = await _rows(
        db,
        "SELECT coalition_points, coalition_lot_id IS NOT NULL FROM purchases WHERE order_id = :o",
        o=order,
    )
    assert purchase == [(10, True)]
    got = await balance(db, member.id)
    assert got.pending == 30 and got.available == 0
    assert await violations(db) == []


async def test_an_earn_all_of_it_the_coalitions_has_one_lot_the_coalitions(db: Database) -> None:
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    order = unique("order")
    assert (await earn_with_coalition(db, cafe, member.member_number, 15, 15, order_id=order)).errors == []
    c_id = await _coalition_id(db)
    lots = await _rows(
        db,
        "SELECT l.issuing_partner_id, l.points FROM lots l JOIN purchases p ON p.coalition_lot_id = l.id"
        " WHERE p.order_id = :o AND p.lot_id IS NULL",
        o=order,
    )
    assert lots == [(c_id, 15)]
    assert (await balance(db, member.id)).available == 15
    # the partner's issuance account did not move for this earn
    assert await _rows(
        db,
        "SELECT count(*) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id"
        " WHERE a.partner_id = :p",
        p=cafe.id,
    ) == [(0,)]
    assert await violations(db) == []


async def test_a_coalition_share_out_of_range_is_refused_and_nothing_is_written(db: Database) -> None:
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    with pytest.raises(ValueError):
        await earn_with_coalition(db, cafe, member.member_number, 5, 6)
    assert (await balance(db, member.id)).available == 0
    assert await _rows(db, "SELECT count(*) FROM lots WHERE member_id = :m", m=member.id) == [(0,)]


def test_refund_shares_are_cumulative_and_sum_to_the_coalitions_share() -> None:
    earned, share = 97, 31
    taken, given = 0, 0
    for step in (10, 33, 1, 53):
        given += refund_share(earned, share, taken, step)
        taken += step
        assert given == share * taken // earned  # the coalition's part never drifts
    assert taken == earned and given == share


async def test_refunds_take_back_exactly_what_was_earned_split_between_the_lots(db: Database) -> None:
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    order = unique("order")
    assert (
        await earn_with_coalition(db, cafe, member.member_number, 100, 30, amount="100.00", order_id=order)
    ).errors == []
    c_id = await _coalition_id(db)
    c_before = await _issuance(db, c_id)

    first = await reverse(db, cafe, order, "33.00")
    assert first.errors == [] and first.result["points"] == 33
    lots = dict(
        await _rows(
            db,
            "SELECT l.issuing_partner_id, l.remaining FROM lots l JOIN purchases p"
            " ON l.id IN (p.lot_id, p.coalition_lot_id) WHERE p.order_id = :o",
            o=order,
        )
    )
    # 33 back: floor(30 x 33 / 100) = 9 from the coalition's lot, 24 from the partner's
    assert lots == {cafe.id: 70 - 24, c_id: 30 - 9}
    assert await _issuance(db, c_id) - c_before == 9

    rest = await reverse(db, cafe, order)
    assert rest.errors == [] and rest.result["points"] == 67
    lots = dict(
        await _rows(
            db,
            "SELECT l.issuing_partner_id, l.remaining FROM lots l JOIN purchases p"
            " ON l.id IN (p.lot_id, p.coalition_lot_id) WHERE p.order_id = :o",
            o=order,
        )
    )
    assert lots == {cafe.id: 0, c_id: 0}
    assert await _issuance(db, c_id) - c_before == 30  # all the coalition's share is back
    reversals = await _rows(
        db,
        "SELECT SUM(coalition_points), SUM(points) FROM journal_entries WHERE kind = 'REVERSE'"
        " AND member_id = :m",
        m=member.id,
    )
    assert reversals == [(-30, -100)]
    assert (await balance(db, member.id)).available == 0
    assert await violations(db) == []


async def test_a_refund_after_the_coalition_points_were_spent_claws_back_as_the_partners(
    db: Database,
) -> None:
    cafe = await make_partner(db)
    shop = await make_partner(db)
    member = await enroll(db, cafe)
    await link(db, shop, member)
    order = unique("order")
    assert (
        await earn_with_coalition(db, cafe, member.member_number, 40, 20, amount="40.00", order_id=order)
    ).errors == []
    # the coalition's lot expires no sooner than the partner's; redeem all 40 at the shop
    assert (await redeem(db, shop, member.member_number, 40)).errors == []
    assert (await earn(db, shop, member.member_number, "50")).errors == []
    back = await reverse(db, cafe, order)
    assert back.errors == [] and back.result["points"] == 40
    assert (await balance(db, member.id)).available == 10
    clawed = await _rows(
        db,
        "SELECT kind, issuing_partner_id, counterparty_partner_id, SUM(points) FROM lot_consumptions"
        " WHERE member_id = :m AND kind IN ('CLAWBACK', 'REVERSAL') GROUP BY 1, 2, 3",
        m=member.id,
    )
    assert clawed == [("CLAWBACK", shop.id, cafe.id, 40)]
    assert await violations(db) == []


async def test_coalition_points_redeemed_at_another_partner_are_consumed_from_the_coalition_lot(
    db: Database,
) -> None:
    cafe = await make_partner(db)
    shop = await make_partner(db)
    member = await enroll(db, cafe)
    await link(db, shop, member)
    assert (await earn_with_coalition(db, cafe, member.member_number, 10, 10)).errors == []
    assert (await earn(db, cafe, member.member_number, "5")).errors == []
    spent = await redeem(db, shop, member.member_number, 12)
    assert spent.errors == []
    c_id = await _coalition_id(db)
    consumed = dict(
        await _rows(
            db,
            "SELECT issuing_partner_id, SUM(points) FROM lot_consumptions WHERE member_id = :m"
            " AND kind = 'REDEMPTION' AND counterparty_partner_id = :s GROUP BY 1",
            m=member.id,
            s=shop.id,
        )
    )
    assert sum(consumed.values()) == 12 and set(consumed) <= {cafe.id, c_id}
    assert (await balance(db, member.id)).available == 3
    assert await violations(db) == []


async def test_an_expired_coalition_lot_is_the_coalitions_breakage(db: Database) -> None:
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    c_id = await _coalition_id(db)
    assert (await earn_with_coalition(db, cafe, member.member_number, 25, 7)).errors == []
    later = clock.now() + TWENTY_FIVE_MONTHS
    clock.set_clock(lambda: later)
    try:
        assert (await balance(db, member.id)).available == 0
        await run_job(db, expire_due_lots)
    finally:
        clock.set_clock(None)
    assert await _member_breakage(db, member.id) == {c_id: 7, cafe.id: 18}
    assert await violations(db) == []


async def test_erasure_forfeits_a_coalition_lot_to_the_coalitions_breakage(db: Database) -> None:
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    c_id = await _coalition_id(db)
    assert (await earn_with_coalition(db, cafe, member.member_number, 12, 5)).errors == []
    done = await erasure.erase_member(db, ADMIN, member.member_number)
    assert done.forfeited_points == 12
    assert await _member_breakage(db, member.id) == {c_id: 5, cafe.id: 7}
    kinds = await _rows(
        db,
        "SELECT issuing_partner_id, kind, points FROM lot_consumptions WHERE member_id = :m ORDER BY 1",
        m=member.id,
    )
    assert sorted(kinds) == sorted([(cafe.id, "ERASURE", 7), (c_id, "ERASURE", 5)])
    assert await violations(db) == []


async def test_a_coalition_earn_repays_an_open_debt_from_both_lots(db: Database) -> None:
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    order = unique("order")
    assert (await earn(db, cafe, member.member_number, "20", order_id=order)).errors == []
    assert (await redeem(db, cafe, member.member_number, 20)).errors == []
    assert (await reverse(db, cafe, order)).errors == []  # 20 of debt
    assert (await balance(db, member.id)).available < 0
    assert (await earn_with_coalition(db, cafe, member.member_number, 30, 20)).errors == []
    assert (await balance(db, member.id)).available == 10
    assert await violations(db) == []


async def test_the_coalition_is_not_listed_as_a_partner(db: Database) -> None:
    from services.partners import service as partners

    c_id = await _coalition_id(db)
    listed, after = [], None
    while True:
        page = await partners.list_partners(db, ADMIN, first=100, after=after)
        listed += [p.id for _, p in page.items]
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert c_id not in listed


async def test_a_bulk_item_with_coalition_points_is_booked_one_by_one_with_its_split(db: Database) -> None:
    from decimal import Decimal

    from services.ledger import service as ledger
    from shared.money import Money

    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    orders = [unique("order") for _ in range(3)]
    items = [
        ledger.PurchaseItem(
            idempotency_key=unique("key"),
            member_number=member.member_number,
            order_id=order,
            amount=Money(Decimal("10.00"), "EUR"),
            decision=ledger.EarnDecision(10, coalition_points=share),
        )
        for order, share in zip(orders, (0, 4, 0), strict=True)
    ]
    outcomes = await ledger.record_purchases(db, cafe.principal, items)
    assert [o.errors for o in outcomes] == [[], [], []]
    assert [o.result["points"] for o in outcomes] == [10, 10, 10]
    shares = await _rows(
        db,
        "SELECT order_id, coalition_points, coalition_lot_id IS NOT NULL FROM purchases"
        " WHERE order_id = ANY(:o) ORDER BY order_id",
        o=orders,
    )
    assert sorted(shares) == sorted([(orders[0], 0, False), (orders[1], 4, True), (orders[2], 0, False)])
    assert (await balance(db, member.id)).available == 30
    assert await violations(db) == []
