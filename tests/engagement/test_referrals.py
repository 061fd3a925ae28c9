"""Referral bonuses: paid once, after the referred member's first purchase is available, with
coalition-issued points, whoever runs the job and however many at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from services.engagement.referral_bonuses import BonusRound
from services.engagement.scheduled import pay_referral_bonuses
from services.gateway.worker import run_job
from services.ledger import service as ledger
from services.ledger.scheduled import activate_due_lots
from services.partners import coalition
from services.settlement import service as settlement
from shared import clock, sql
from shared.settings import get_settings
from tests.engagement.referral_helpers import (
    bonuses_for,
    code_of,
    enroll_referred,
    member_principal,
    pay,
    referral_of,
    rows,
)
from tests.factories import balance, earn, enroll, make_partner, outbox, redeem, reverse, unique, violations
from tests.settlement.test_settlement import SETTLER

BONUS = 500


@pytest.fixture(autouse=True)
def bonus_points(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REFERRAL_BONUS_POINTS", str(BONUS))
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("REFERRAL_BONUS_POINTS")
    get_settings.cache_clear()


async def test_bonus_is_paid_once_after_the_return_window(db) -> None:
    cafe = await make_partner(db)
    shop = await make_partner(db, return_window_days=14)
    referrer = await enroll(db, cafe)
    friend = await enroll_referred(db, shop, await code_of(db, referrer), email=f"{unique('f')}@example.com")
    assert (await referral_of(db, friend))["referrer_member_id"] == referrer.id

    assert (await earn(db, shop, friend.member_number, "40")).errors == []
    await pay(db)  # inside the return window: pending points earn the referrer nothing yet
    assert await bonuses_for(db, friend) == []
    assert (await balance(db, referrer.id)).available == 0

    later = clock.now() + timedelta(days=15)
    clock.set_clock(lambda: later)
    try:
        await pay(db)  # the window is over, but the lot is not activated yet: still nothing
        assert await bonuses_for(db, friend) == []
        await run_job(db, activate_due_lots)
        later += timedelta(minutes=2)  # past the job's recheck interval
        paid_round = await pay(db)
        assert paid_round.paid >= 1
        assert (await balance(db, referrer.id)).available == BONUS
        # The referrer's history shows the bonus as spendable points, as an earn would.
        history = await ledger.transactions(db, member_principal(referrer), referrer.id, first=10, after=None)
        assert [(t.kind, str(t.status)) for _, t in history.items] == [("REFERRAL", "AVAILABLE")]
        # Again, and another purchase by the friend: no second bonus.
        assert (await earn(db, shop, friend.member_number, "10")).errors == []
        await run_job(db, activate_due_lots)
        later += timedelta(minutes=2)
        await pay(db)
        assert (await balance(db, referrer.id)).available == BONUS
    finally:
        clock.set_clock(None)

    [bonus] = await bonuses_for(db, friend)
    assert bonus["points"] == BONUS and bonus["referrer_member_id"] == referrer.id
    [entry] = await rows(db, "SELECT * FROM journal_entries WHERE id = $1", bonus["entry_id"])
    async with sql.connection(db) as conn:
        issuer = await coalition.find_coalition_issuer_id(conn)
    assert entry["kind"] == "REFERRAL" and entry["member_id"] == referrer.id
    assert entry["partner_id"] == issuer and entry["coalition_points"] == BONUS
    [lot] = await rows(db, "SELECT * FROM lots WHERE earn_entry_id = $1", bonus["entry_id"])
    assert lot["issuing_partner_id"] == issuer and lot["points"] == BONUS and lot["activated_at"] is not None

    earned = await outbox(db, member_id=referrer.id, types=("points.earned",))
    assert [(e["data"]["source"], e["data"]["points"], e["data"]["status"]) for e in earned] == [
        ("REFERRAL", BONUS, "AVAILABLE")
    ]
    [rewarded] = await outbox(db, member_id=referrer.id, types=("referral.rewarded",))
    assert rewarded["data"]["referredMemberNumber"] == friend.member_number
    assert rewarded["data"]["memberNumber"] == referrer.member_number
    assert rewarded["data"]["points"] == BONUS
    assert await violations(db, at=later) == []


async def test_bonus_redeemed_at_a_partner_is_the_coalitions_lot(db) -> None:
    """Settled as coalition-issued: the redemption's movement names the coalition as issuer and the
    redeeming partner as counterparty, which settlement prices at that partner's redeem price."""
    cafe = await make_partner(db)
    referrer = await enroll(db, cafe)
    friend = await enroll_referred(db, cafe, await code_of(db, referrer))
    assert (await earn(db, cafe, friend.member_number, "25")).errors == []  # no window: available
    await pay(db)
    assert (await balance(db, referrer.id)).available == BONUS
    spent = await redeem(db, cafe, referrer.member_number, 200)
    assert spent.errors == []
    async with sql.connection(db) as conn:
        issuer = await coalition.find_coalition_issuer_id(conn)
    moved = await rows(
        db,
        "SELECT issuing_partner_id, counterparty_partner_id, points FROM lot_consumptions"
        " WHERE member_id = $1 AND kind = 'REDEMPTION'",
        referrer.id,
    )
    assert moved == [{"issuing_partner_id": issuer, "counterparty_partner_id": cafe.id, "points": 200}]
    assert await violations(db) == []


async def test_two_workers_at_once_pay_each_referral_once(db) -> None:
    cafe = await make_partner(db)
    referrer = await enroll(db, cafe)
    code = await code_of(db, referrer)
    friends = [await enroll_referred(db, cafe, code) for _ in range(6)]
    for friend in friends:
        assert (await earn(db, cafe, friend.member_number, "10")).errors == []
    # Two worker rounds and four more single batches, all at once, in batches of two.
    await asyncio.gather(
        run_job(db, pay_referral_bonuses, 2),
        run_job(db, pay_referral_bonuses, 2),
        *(pay(db, batch=2) for _ in range(4)),
    )
    # Whatever the rounds left (a batch skips rows another holds), a later round pays.
    later = clock.now() + timedelta(minutes=2)
    clock.set_clock(lambda: later)
    try:
        await pay(db)
        assert (await balance(db, referrer.id)).available == 6 * BONUS
    finally:
        clock.set_clock(None)
    for friend in friends:
        assert len(await bonuses_for(db, friend)) == 1
    entries = await rows(
        db,
        "SELECT count(*) AS n FROM journal_entries WHERE member_id = $1 AND kind = 'REFERRAL'",
        referrer.id,
    )
    assert entries == [{"n": 6}]
    assert await violations(db, at=later) == []


async def test_a_purchase_refunded_in_full_does_not_qualify_but_a_later_one_does(db) -> None:
    shop = await make_partner(db, return_window_days=14)
    referrer = await enroll(db, shop)
    friend = await enroll_referred(db, shop, await code_of(db, referrer))
    order = unique("order")
    assert (await earn(db, shop, friend.member_number, "30", order_id=order)).errors == []
    assert (await reverse(db, shop, order)).errors == []  # refunded in full, inside the window
    later = clock.now() + timedelta(days=15)
    clock.set_clock(lambda: later)
    try:
        await run_job(db, activate_due_lots)
        await pay(db)
        assert await bonuses_for(db, friend) == []
        assert (await earn(db, shop, friend.member_number, "5")).errors == []
        even_later = later + timedelta(days=15)
        clock.set_clock(lambda: even_later)
        await run_job(db, activate_due_lots)
        await pay(db)
        [bonus] = await bonuses_for(db, friend)
    finally:
        clock.set_clock(None)
    [purchase] = await rows(
        db, "SELECT order_id FROM journal_entries WHERE id = $1", bonus["qualifying_entry_id"]
    )
    assert purchase["order_id"] != order
    assert await violations(db, at=even_later) == []


async def test_no_bonus_while_disabled(db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERRAL_BONUS_POINTS", "0")
    get_settings.cache_clear()
    cafe = await make_partner(db)
    referrer = await enroll(db, cafe)
    friend = await enroll_referred(db, cafe, await code_of(db, referrer))
    assert (await earn(db, cafe, friend.member_number, "10")).errors == []
    assert await pay(db) == BonusRound(0, 0, 0)
    assert await bonuses_for(db, friend) == []
    assert (await balance(db, referrer.id)).available == 0
    assert (await referral_of(db, friend))["closed_at"] is None  # paid once enabled again


async def test_a_bonus_redeemed_at_a_partner_is_owed_to_it_by_the_coalition(db) -> None:
    """Settled as coalition-issued (DESIGN.md, Rulings): the coalition pays the redeeming partner
    its redeem price, and the partner owes nothing for the bonus (no issue fee: it issued none)."""
    t0 = clock.now().replace(microsecond=0) - timedelta(days=6400)  # the period factories.py lists
    shop = await make_partner(db, redeem_price="0.010", issue_fee_per_point=Decimal("0.001"))
    referrer = await enroll(db, shop)
    try:
        clock.set_clock(lambda: t0 + timedelta(hours=1))
        friend = await enroll_referred(db, shop, await code_of(db, referrer))
        assert (await earn(db, shop, friend.member_number, "10")).errors == []  # no return window
        clock.set_clock(lambda: t0 + timedelta(hours=2))
        await pay(db)
        assert len(await bonuses_for(db, friend)) == 1
        clock.set_clock(lambda: t0 + timedelta(hours=3))
        assert (await redeem(db, shop, referrer.member_number, 200)).errors == []
        clock.set_clock(lambda: t0 + timedelta(days=11))
        run = await settlement.run_settlement(
            db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=10)
        )
    finally:
        clock.set_clock(None)
    statements = {s.partner_id: s for s in run.statements}
    shop_lines = {(x.kind, x.counterparty_id): (x.points, x.amount) for x in statements[shop.id].lines}
    assert shop_lines == {
        ("REDEMPTION_RECEIVABLE", None): (200, Decimal("2.00")),  # the coalition's 200 at 0.010
        ("ISSUE_FEE", None): (10, Decimal("-0.01")),  # the friend's purchase only, not the bonus
    }
    coalition_lines = [x for x in statements[None].lines if x.counterparty_id == shop.id]
    assert {(x.kind, x.points, x.amount) for x in coalition_lines} == {
        ("REDEMPTION_PAYABLE", 200, Decimal("-2.00")),
        ("ISSUE_FEE", 10, Decimal("0.01")),
    }
    assert sum((s.net for s in run.statements), Decimal(0)) == 0
    assert await violations(db) == []
