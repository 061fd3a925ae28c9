"""Gifts and charity: transfers move lots with their issuer and expiry and settle as the issuer's
points wherever they are spent; limits and locks hold under concurrency; donations are
redemptions at the charity, on its statement."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from services.engagement import transfers
from services.gateway.worker import run_job
from services.ledger import erasure
from services.ledger.scheduled import expire_due_lots
from services.partners.models import PartnerKind
from services.settlement import service as settlement
from shared import clock, sql
from shared.access import MEMBER_SCOPE, Principal
from shared.errors import DomainError
from shared.settings import get_settings
from tests.factories import (
    ADMIN,
    balance,
    earn,
    enroll,
    make_partner,
    outbox,
    redeem,
    reverse,
    unique,
    violations,
)
from tests.settlement.test_settlement import SETTLER


def as_member(member_id: int) -> Principal:
    return Principal(client_id="test-member-app", scopes=frozenset({MEMBER_SCOPE}), member_id=member_id)


async def give(db, sender, receiver_number: str, points: int, *, key: str | None = None, message=None):
    return await transfers.transfer_points(
        db,
        as_member(sender.id),
        idempotency_key=key or unique("key"),
        to_member_number=receiver_number,
        points=points,
        message=message,
    )


async def donate(db, member, charity_id: int, points: int, *, key: str | None = None):
    return await transfers.donate_points(
        db, as_member(member.id), idempotency_key=key or unique("key"), charity_id=charity_id, points=points
    )


def codes(outcome) -> list[str]:
    return [str(e.code) for e in outcome.errors]


async def lots_of(db, member_id: int) -> list[dict]:
    async with sql.connection(db) as conn:
        rows = await conn.fetch("SELECT * FROM lots WHERE member_id = $1 ORDER BY id", member_id)
    return [dict(r) for r in rows]


async def test_a_transfer_moves_lots_with_their_issuer_and_expiry(db) -> None:
    cafe, shop = await make_partner(db), await make_partner(db)
    ann = await enroll(db, cafe)
    await enroll(db, shop, member_number=ann.member_number)
    bob = await enroll(db, shop)
    assert (await earn(db, cafe, ann.member_number, "30")).errors == []
    assert (await earn(db, shop, ann.member_number, "50")).errors == []

    outcome = await give(db, ann, bob.member_number, 60, message="happy birthday")

    assert outcome.errors == []
    assert (await balance(db, ann.id)).available == 20 and (await balance(db, bob.id)).available == 60
    sources = {lot["id"]: lot for lot in await lots_of(db, ann.id)}
    received = await lots_of(db, bob.id)
    assert sum(lot["points"] for lot in received) == 60
    for lot in received:
        source = sources[lot["source_lot_id"]]
        assert lot["issuing_partner_id"] == source["issuing_partner_id"]
        assert lot["expires_at"] == source["expires_at"] and lot["activated_at"] is not None
    assert {lot["issuing_partner_id"] for lot in received} == {cafe.id, shop.id}  # first to expire first
    [event] = await outbox(db, member_id=bob.id, types=("points.transferred",))
    assert event["data"]["fromMemberNumber"] == ann.member_number and event["data"]["points"] == 60
    assert event["data"]["message"] == "happy birthday" and event["partner_ids"] == []
    async with sql.connection(db) as conn:
        kinds = await conn.fetch(
            "SELECT member_id, kind, points FROM journal_entries WHERE kind LIKE 'TRANSFER%' AND member_id"
            " = ANY($1::bigint[]) ORDER BY id",
            [ann.id, bob.id],
        )
    assert [(r["member_id"], r["kind"], r["points"]) for r in kinds] == [
        (ann.id, "TRANSFER_OUT", -60),
        (bob.id, "TRANSFER_IN", 60),
    ]
    assert await violations(db) == []


async def test_the_rules_of_giving(db) -> None:
    cafe = await make_partner(db, return_window_days=14)
    ann, bob = await enroll(db, cafe), await enroll(db, cafe)
    assert (await earn(db, cafe, ann.member_number, "40")).errors == []  # pending: not givable
    assert codes(await give(db, ann, bob.member_number, 10)) == ["INSUFFICIENT_POINTS"]
    assert codes(await give(db, ann, ann.member_number, 1)) == ["INVALID"]
    erased = await enroll(db, cafe)
    await erasure.erase_member(db, ADMIN, erased.member_number)
    assert codes(await give(db, ann, erased.member_number, 1)) == ["MEMBER_NOT_FOUND"]
    try:
        await give(db, ann, bob.member_number, 0, message="x" * 201)
    except DomainError as exc:  # the input itself: refused before anything is looked up
        assert {(str(e.code), e.field) for e in exc.errors} == {
            ("INVALID_AMOUNT", "points"),
            ("TOO_LONG", "message"),
        }
    else:
        raise AssertionError("bad input was accepted")


async def test_a_member_with_debt_gives_nothing(db) -> None:
    cafe = await make_partner(db)
    ann, bob = await enroll(db, cafe), await enroll(db, cafe)
    order = unique("order")
    assert (await earn(db, cafe, ann.member_number, "100", order_id=order)).errors == []
    assert (await give(db, ann, bob.member_number, 100)).errors == []
    assert (await reverse(db, cafe, order)).errors == []  # the gift spent them: a debt is left
    assert codes(await give(db, ann, bob.member_number, 1)) == ["MEMBER_HAS_DEBT"]
    assert (await earn(db, cafe, ann.member_number, "150")).errors == []  # repays the 100 first
    assert (await balance(db, ann.id)).available == 50
    assert (await give(db, ann, bob.member_number, 50)).errors == []
    assert await violations(db) == []


async def test_limits_hold_under_concurrent_transfers(db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFER_DAILY_LIMIT_POINTS", "50")
    get_settings.cache_clear()
    try:
        cafe = await make_partner(db)
        ann = await enroll(db, cafe)
        friends = [await enroll(db, cafe) for _ in range(4)]
        assert (await earn(db, cafe, ann.member_number, "1000")).errors == []
        outcomes = await asyncio.gather(*(give(db, ann, friends[i % 4].member_number, 10) for i in range(20)))
        assert sorted(tuple(codes(o)) for o in outcomes) == [()] * 5 + [("TRANSFER_LIMIT_REACHED",)] * 15
        assert (await balance(db, ann.id)).available == 950
        assert sum([(await balance(db, f.id)).available for f in friends]) == 50
    finally:
        monkeypatch.delenv("TRANSFER_DAILY_LIMIT_POINTS")
        get_settings.cache_clear()
    assert await violations(db) == []


async def test_two_members_giving_to_each_other_at_once_never_deadlock(db) -> None:
    cafe = await make_partner(db)
    ann, bob = await enroll(db, cafe), await enroll(db, cafe)
    for m in (ann, bob):
        assert (await earn(db, cafe, m.member_number, "500")).errors == []
    moves = []
    for _ in range(15):
        moves += [give(db, ann, bob.member_number, 7), give(db, bob, ann.member_number, 5)]
    outcomes = await asyncio.wait_for(asyncio.gather(*moves), timeout=60)
    assert all(o.errors == [] for o in outcomes)
    assert (await balance(db, ann.id)).available == 500 - 15 * 7 + 15 * 5
    assert (await balance(db, bob.id)).available == 500 + 15 * 7 - 15 * 5
    assert await violations(db) == []


async def test_exactly_once_per_key_and_keys_are_each_members(db) -> None:
    cafe = await make_partner(db)
    ann, bob, cat = await enroll(db, cafe), await enroll(db, cafe), await enroll(db, cafe)
    for m in (ann, bob):
        assert (await earn(db, cafe, m.member_number, "100")).errors == []
    key = unique("key")
    first = await give(db, ann, cat.member_number, 30, key=key)
    again = await give(db, ann, cat.member_number, 30, key=key)
    assert first.result == again.result
    assert codes(await give(db, ann, cat.member_number, 31, key=key)) == ["IDEMPOTENCY_KEY_REUSED"]
    other = await give(db, bob, cat.member_number, 30, key=key)  # the same key, another member
    assert other.errors == [] and other.result["transfer_id"] != first.result["transfer_id"]
    assert (await balance(db, cat.id)).available == 60


async def test_given_points_settle_as_the_issuers_and_expire_to_its_breakage(db) -> None:
    """A gift changes whose points they are to spend, not who owes them: redeemed at another
    partner, the original issuer pays; the rest expires to the issuer's breakage."""
    t0 = clock.now().replace(microsecond=0) - timedelta(days=7800)  # the period factories.py lists
    issuer = await make_partner(db, issue_fee_per_point=Decimal("0"))
    redeemer = await make_partner(db, redeem_price="0.010")
    ann = await enroll(db, issuer)
    bob = await enroll(db, redeemer)
    try:
        clock.set_clock(lambda: t0 + timedelta(hours=1))
        assert (await earn(db, issuer, ann.member_number, "300")).errors == []
        clock.set_clock(lambda: t0 + timedelta(hours=2))
        assert (await give(db, ann, bob.member_number, 250)).errors == []
        clock.set_clock(lambda: t0 + timedelta(hours=3))
        assert (await redeem(db, redeemer, bob.member_number, 200)).errors == []
        clock.set_clock(lambda: t0 + timedelta(days=11))
        run = await settlement.run_settlement(
            db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=10)
        )
    finally:
        clock.set_clock(None)
    statements = {s.partner_id: s for s in run.statements}
    issuer_lines = {(x.kind, x.counterparty_id): (x.points, x.amount) for x in statements[issuer.id].lines}
    assert issuer_lines[("REDEMPTION_PAYABLE", redeemer.id)] == (200, Decimal("-2.00"))
    assert sum((s.net for s in run.statements), Decimal(0)) == 0
    # The 50 left with Bob expire with the lot they came from, to the issuer's breakage.
    [lot] = [lot for lot in await lots_of(db, bob.id) if lot["remaining"] > 0]
    later = lot["expires_at"] + timedelta(minutes=1)
    clock.set_clock(lambda: later)
    try:
        await run_job(db, expire_due_lots)
    finally:
        clock.set_clock(None)
    async with sql.connection(db) as conn:
        expired = await conn.fetchrow(
            "SELECT issuing_partner_id, points FROM lot_consumptions WHERE lot_id = $1 AND kind = 'EXPIRY'",
            lot["id"],
        )
    assert (expired["issuing_partner_id"], expired["points"]) == (issuer.id, 50)
    assert await violations(db, at=later) == []


async def test_a_donation_is_a_redemption_on_the_charitys_statement(db) -> None:
    t0 = clock.now().replace(microsecond=0) - timedelta(days=7900)  # the period factories.py lists
    cafe = await make_partner(db)
    charity = await make_partner(db, kind=PartnerKind.CHARITY, redeem_price="0.005")
    ann = await enroll(db, cafe)
    assert codes(await donate(db, ann, cafe.id, 10)) == ["CHARITY_NOT_FOUND"]  # not a charity
    try:
        clock.set_clock(lambda: t0 + timedelta(hours=1))
        assert (await earn(db, cafe, ann.member_number, "100")).errors == []
        done = await donate(db, ann, charity.id, 80)
        assert done.errors == [] and done.result["points"] == 80
        assert done.result["value"] == {"amount": "0.40", "currency": "EUR"}
        assert (await balance(db, ann.id)).available == 20
        clock.set_clock(lambda: t0 + timedelta(days=11))
        run = await settlement.run_settlement(
            db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=10)
        )
    finally:
        clock.set_clock(None)
    statements = {s.partner_id: s for s in run.statements}
    charity_lines = {(x.kind, x.counterparty_id): (x.points, x.amount) for x in statements[charity.id].lines}
    assert charity_lines == {("REDEMPTION_RECEIVABLE", cafe.id): (80, Decimal("0.40"))}
    [event] = await outbox(db, member_id=ann.id, types=("points.donated",))
    assert event["data"]["points"] == 80
    # A charity earns nothing.
    member = await enroll(db, cafe)
    refused = await earn(db, charity, member.member_number, "10")
    assert codes(refused) == ["PARTNER_NOT_FOUND"]
    assert await violations(db) == []
