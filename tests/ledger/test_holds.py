"""Two-phase redemption: authorize holds points, capture spends them, void or expiry releases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text

from services.gateway.worker import run_job
from services.ledger.scheduled import expire_due_lots, release_expired_holds
from shared import clock
from shared.ids import to_global_id
from tests.factories import (
    authorize,
    balance,
    capture,
    earn,
    enroll,
    make_partner,
    redeem,
    violations,
    void,
)


def _aid(outcome) -> str:
    return to_global_id("Authorization", outcome.result["authorization_id"])


async def _funded(db, points: str = "100"):
    shop = await make_partner(db)
    member = await enroll(db, shop)
    await earn(db, shop, member.member_number, points)
    return shop, member


async def test_a_hold_leaves_available_at_once_and_cannot_be_spent_twice(db):
    shop, member = await _funded(db)
    held = await authorize(db, shop, member.member_number, 70)
    assert held.errors == [] and held.result["status"] == "ACTIVE"
    b = await balance(db, member.id)
    assert (b.available, b.held) == (30, 70)
    refused = await redeem(db, shop, member.member_number, 31)
    assert [e.code for e in refused.errors] == ["INSUFFICIENT_POINTS"]
    second = await authorize(db, shop, member.member_number, 31)
    assert [e.code for e in second.errors] == ["INSUFFICIENT_POINTS"]
    assert await violations(db) == []
    # Leave no live hold behind: other tests move the clock past it.
    assert (await void(db, shop, _aid(held))).errors == []


async def test_partial_capture_spends_part_and_releases_the_rest(db):
    shop, member = await _funded(db)
    aid = _aid(await authorize(db, shop, member.member_number, 60))
    spent = await capture(db, shop, aid, 45)
    assert spent.errors == [] and spent.result["points"] == 45
    assert spent.result["value"] == {"amount": "0.36", "currency": "EUR"}
    b = await balance(db, member.id)
    assert (b.available, b.held) == (55, 0)
    again = await capture(db, shop, aid, 1)
    assert [e.code for e in again.errors] == ["AUTHORIZATION_NOT_ACTIVE"]
    assert await violations(db) == []


async def test_capture_more_than_held_and_foreign_partners(db):
    shop, member = await _funded(db)
    other = await make_partner(db)
    aid = _aid(await authorize(db, shop, member.member_number, 10))
    too_much = await capture(db, shop, aid, 11)
    assert [(e.code, e.field) for e in too_much.errors] == [("INVALID_AMOUNT", "points")]
    assert [e.code for e in (await capture(db, other, aid)).errors] == ["AUTHORIZATION_NOT_FOUND"]
    assert [e.code for e in (await void(db, other, aid)).errors] == ["AUTHORIZATION_NOT_FOUND"]
    assert (await capture(db, shop, aid)).result["points"] == 10


async def test_void_releases_and_blocks_capture(db):
    shop, member = await _funded(db)
    aid = _aid(await authorize(db, shop, member.member_number, 40))
    voided = await void(db, shop, aid)
    assert voided.result["status"] == "VOIDED"
    assert (await balance(db, member.id)).available == 100
    assert [e.code for e in (await capture(db, shop, aid)).errors] == ["AUTHORIZATION_NOT_ACTIVE"]
    assert [e.code for e in (await void(db, shop, aid)).errors] == ["AUTHORIZATION_NOT_ACTIVE"]


async def test_an_expired_hold_is_released_by_reads_before_the_worker_runs(db):
    shop, member = await _funded(db)
    aid = _aid(await authorize(db, shop, member.member_number, 40, expires_in=timedelta(minutes=5)))
    later = clock.now() + timedelta(minutes=6)
    clock.set_clock(lambda: later)
    try:
        b = await balance(db, member.id)
        assert (b.available, b.held) == (100, 0)
        assert [e.code for e in (await capture(db, shop, aid)).errors] == ["AUTHORIZATION_NOT_ACTIVE"]
        released = await run_job(db, release_expired_holds)
        assert released.rows >= 1
    finally:
        clock.set_clock(None)
    async with db.sessions() as session:
        status = await session.scalar(text("SELECT status FROM holds WHERE id = :id"), {"id": _local(aid)})
    assert status == "EXPIRED"


def _local(global_id: str) -> int:
    from shared.ids import from_global_id

    decoded = from_global_id(global_id, "Authorization")
    assert decoded is not None
    return decoded[1]


async def test_a_live_hold_keeps_its_lots_from_expiring(db):
    shop = await make_partner(db)
    member = await enroll(db, shop)
    now = clock.now()
    await earn(db, shop, member.member_number, "50", occurred_at=now - timedelta(days=729))
    aid = _aid(await authorize(db, shop, member.member_number, 30, expires_in=timedelta(days=3)))
    two_days = now + timedelta(days=2)  # the lot is past its 24 months now; the hold is not
    clock.set_clock(lambda: two_days)
    try:
        await run_job(db, expire_due_lots)
        spent = await capture(db, shop, aid)
        assert spent.errors == [] and spent.result["points"] == 30
        await run_job(db, expire_due_lots)  # now the lot's other 20 points expire
        b = await balance(db, member.id)
        assert (b.available, b.held) == (0, 0)
    finally:
        clock.set_clock(None)
    async with db.sessions() as session:
        expired = await session.scalar(
            text("SELECT SUM(points) FROM lot_consumptions WHERE member_id = :m AND kind = 'EXPIRY'"),
            {"m": member.id},
        )
    assert expired == 20
    assert await violations(db) == []


async def test_capture_void_and_expiry_race_exactly_one_wins(db):
    """For each hold a capture and a void race: exactly one wins. Past a hold's expiry, captures
    racing the worker's release all lose (time decides, not the worker), and the points add up."""
    shop, member = await _funded(db, "1000")
    aids = [
        _aid(await authorize(db, shop, member.member_number, 10, expires_in=timedelta(seconds=30)))
        for _ in range(20)
    ]
    results = await asyncio.gather(
        *[coroutine for aid in aids for coroutine in (capture(db, shop, aid), void(db, shop, aid))]
    )
    captured = voided = 0
    for capture_result, void_result in zip(results[0::2], results[1::2], strict=True):
        wins = [r for r in (capture_result, void_result) if not r.errors]
        assert len(wins) == 1
        losers = [e.code for r in (capture_result, void_result) for e in r.errors]
        assert losers == ["AUTHORIZATION_NOT_ACTIVE"]
        captured += capture_result.errors == []
        voided += void_result.errors == []
    b = await balance(db, member.id)
    assert (b.available, b.held) == (1000 - 10 * captured, 0)
    late = [
        _aid(await authorize(db, shop, member.member_number, 5, expires_in=timedelta(seconds=30)))
        for _ in range(10)
    ]
    after = clock.now() + timedelta(seconds=31)
    clock.set_clock(lambda: after)
    try:
        outcomes = await asyncio.gather(
            run_job(db, release_expired_holds), *[capture(db, shop, a) for a in late]
        )
    finally:
        clock.set_clock(None)
    assert all([e.code for e in o.errors] == ["AUTHORIZATION_NOT_ACTIVE"] for o in outcomes[1:])
    assert (await balance(db, member.id)).available == 1000 - 10 * captured
    assert await violations(db) == []


async def test_an_open_authorizations_order_cannot_be_redeemed_directly(db):
    """Redeeming an order an open authorization holds would leave its capture nowhere to go (it
    once ended in a unique-constraint error, a 500); it is DUPLICATE_ORDER, and the capture works."""
    shop, member = await _funded(db)
    held = await authorize(db, shop, member.member_number, 30, order_id="till-9-order-1")
    direct = await redeem(db, shop, member.member_number, 10, order_id="till-9-order-1")
    assert [(e.code, e.field) for e in direct.errors] == [("DUPLICATE_ORDER", "orderId")]
    assert "open authorization" in direct.errors[0].message
    captured = await capture(db, shop, _aid(held), 30)
    assert captured.errors == [] and captured.result["points"] == 30
    # Once voided, an order id is free again: the void released it.
    other = await authorize(db, shop, member.member_number, 5, order_id="till-9-order-2")
    assert (await void(db, shop, _aid(other))).errors == []
    assert (await redeem(db, shop, member.member_number, 5, order_id="till-9-order-2")).errors == []
    assert await violations(db) == []
