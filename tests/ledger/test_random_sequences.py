"""Random earn/redeem/reverse/cancel sequences: after every step the ledger's invariants hold and
the member's balance matches a plain model of what should have happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.ids import to_global_id
from tests.factories import (
    balance,
    cancel,
    earn,
    enroll,
    link,
    make_partner,
    redeem,
    reverse,
    unique,
    violations,
)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(0, 2), st.integers(1, 20_000)),  # cents
        st.tuples(st.just("redeem"), st.integers(0, 2), st.integers(1, 150)),
        st.tuples(st.just("reverse"), st.integers(0, 50), st.integers(1, 100)),  # % of the rest
        st.tuples(st.just("cancel"), st.integers(0, 50), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


@dataclass
class Purchase:
    partner: int
    order: str
    cents: int
    points: int
    reversed_points: int = 0
    refunded_cents: int = 0


@dataclass
class Model:
    balance: int = 0
    purchases: list[Purchase] = field(default_factory=list)
    redemptions: list[tuple[int, str, int, bool]] = field(default_factory=list)


@settings(max_examples=75, deadline=None, suppress_health_check=list(HealthCheck))
@given(sequence=steps)
async def test_random_sequences_keep_the_books(db, sequence):
    partners = [await make_partner(db) for _ in range(3)]
    member = await enroll(db, partners[0])
    for partner in partners[1:]:  # spending needs a link
        await link(db, partner, member)
    model = Model()
    for kind, a, b in sequence:
        if kind == "earn":
            order = unique("o")
            outcome = await earn(db, partners[a], member.member_number, str(Decimal(b) / 100), order_id=order)
            points = b // 100
            assert outcome.result["points"] == points
            model.purchases.append(Purchase(a, order, b, points))
            model.balance += points
        elif kind == "redeem":
            outcome = await redeem(db, partners[a], member.member_number, b)
            if model.balance >= b:
                assert outcome.errors == [], outcome.errors
                model.balance -= b
                rid = to_global_id("Redemption", outcome.result["redemption_id"])
                model.redemptions.append((a, rid, b, False))
            else:
                assert [e.code for e in outcome.errors] == ["INSUFFICIENT_POINTS"]
        elif kind == "reverse" and model.purchases:
            p = model.purchases[a % len(model.purchases)]
            left = p.cents - p.refunded_cents
            cents = max(1, left * b // 100) if left else 1
            outcome = await reverse(db, partners[p.partner], p.order, str(Decimal(cents) / 100))
            if left == 0 or cents > left:
                assert outcome.errors, "refund beyond the purchase was accepted"
                continue
            total = (Decimal(p.points) * (p.refunded_cents + cents) / p.cents).to_integral_value(
                rounding=ROUND_FLOOR
            )
            expected = int(total) - p.reversed_points
            assert outcome.errors == [] and outcome.result["points"] == expected
            p.refunded_cents += cents
            p.reversed_points += expected
            model.balance -= expected
        elif kind == "cancel" and model.redemptions:
            index = a % len(model.redemptions)
            partner, rid, points, cancelled = model.redemptions[index]
            outcome = await cancel(db, partners[partner], rid)
            if cancelled:
                assert [e.code for e in outcome.errors] == ["ALREADY_CANCELLED"]
            else:
                assert outcome.errors == []
                model.balance += points
                model.redemptions[index] = (partner, rid, points, True)
        current = await balance(db, member.id)
        assert current.available == model.balance, (kind, a, b)
        assert current.pending == 0
        assert await violations(db) == []


hold_steps = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(0, 1), st.integers(100, 10_000)),
        st.tuples(st.just("redeem"), st.integers(0, 1), st.integers(1, 80)),
        st.tuples(st.just("authorize"), st.integers(0, 1), st.integers(1, 80)),
        st.tuples(st.just("capture"), st.integers(0, 20), st.integers(0, 100)),  # % of the hold
        st.tuples(st.just("void"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("wait"), st.integers(1, 120), st.just(0)),  # minutes
    ),
    min_size=1,
    max_size=25,
)


@dataclass
class HoldModel:
    partner: int
    authorization: str
    points: int
    expires_at: datetime
    open: bool = True


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(sequence=hold_steps)
async def test_random_sequences_with_holds_and_time(db, sequence):
    """Holds expire with the clock (30 minutes each here); available = balance - live holds."""
    from services.gateway.worker import run_job
    from services.ledger.scheduled import release_expired_holds
    from shared import clock
    from tests.factories import authorize, capture, void

    start = clock.now()
    offset = timedelta(0)
    clock.set_clock(lambda: start + offset)
    try:
        partners = [await make_partner(db) for _ in range(2)]
        member = await enroll(db, partners[0])
        await link(db, partners[1], member)
        balance_points, holds_made = 0, []
        for kind, a, b in sequence:
            now = start + offset
            live = sum(h.points for h in holds_made if h.open and h.expires_at > now)
            if kind == "earn":
                await earn(db, partners[a], member.member_number, str(Decimal(b) / 100))
                balance_points += b // 100
            elif kind == "redeem":
                outcome = await redeem(db, partners[a], member.member_number, b)
                assert (outcome.errors == []) == (balance_points - live >= b)
                if not outcome.errors:
                    balance_points -= b
            elif kind == "authorize":
                outcome = await authorize(
                    db, partners[a], member.member_number, b, expires_in=timedelta(minutes=30)
                )
                assert (outcome.errors == []) == (balance_points - live >= b)
                if not outcome.errors:
                    aid = to_global_id("Authorization", outcome.result["authorization_id"])
                    holds_made.append(HoldModel(a, aid, b, now + timedelta(minutes=30)))
            elif kind in ("capture", "void") and holds_made:
                hold = holds_made[a % len(holds_made)]
                active = hold.open and hold.expires_at > now
                if kind == "capture":
                    points = max(1, hold.points * b // 100)
                    outcome = await capture(db, partners[hold.partner], hold.authorization, points)
                else:
                    outcome = await void(db, partners[hold.partner], hold.authorization)
                assert (outcome.errors == []) == active, (kind, outcome.errors)
                if active:
                    hold.open = False
                    if kind == "capture":
                        balance_points -= points
            elif kind == "wait":
                offset += timedelta(minutes=a)
                if a % 3 == 0:  # sometimes the worker catches up, sometimes it is behind
                    await run_job(db, release_expired_holds)
            now = start + offset
            live = sum(h.points for h in holds_made if h.open and h.expires_at > now)
            current = await balance(db, member.id)
            assert (current.available, current.held) == (balance_points - live, live), kind
            assert await violations(db) == []
        # Leave nothing live for the tests that follow, whose clock is the real one again.
        await run_job(db, release_expired_holds)
        for hold in holds_made:
            if hold.open and hold.expires_at > start + offset:
                await void(db, partners[hold.partner], hold.authorization)
    finally:
        clock.set_clock(None)
