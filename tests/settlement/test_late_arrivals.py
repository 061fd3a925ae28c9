"""Late arrivals: events recorded after the run that finalized their period are settled once, by
the next run, as ADJUSTMENT lines naming the original run; nothing finalized changes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from services.settlement import audit as settlement_audit
from services.settlement import queries as settlement_queries
from services.settlement import service as settlement
from shared import clock, sql
from shared.errors import DomainError
from tests.factories import earn, enroll, link, make_partner, redeem
from tests.settlement.test_settlement import SETTLER


def _at(moment):
    clock.set_clock(lambda: moment)


def _lines(run, partner):
    return {
        (x.kind, x.adjusted_kind, x.original_run_id, x.counterparty_id): (x.points, x.amount)
        for s in run.statements
        if s.partner_id == partner.id
        for x in s.lines
    }


async def test_a_late_redemption_is_an_adjustment_in_the_next_run_and_only_there(db):
    t0 = clock.now().replace(microsecond=0) - timedelta(days=1700)
    day = timedelta(days=1)
    cafe = await make_partner(db, redeem_price="0.008", issue_fee_per_point=Decimal("0.001"))
    airline = await make_partner(db, redeem_price="0.010")
    member = await enroll(db, cafe)
    await link(db, airline, member)
    try:
        _at(t0 + timedelta(hours=1))
        await earn(db, cafe, member.member_number, "1000")
        _at(t0 + timedelta(hours=2))
        assert (await redeem(db, airline, member.member_number, 300)).errors == []
        _at(t0 + 15 * day)
        first = await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=t0 + 10 * day)
        first = await settlement.finalize_settlement(db, SETTLER, first.id)
        frozen = await settlement_queries.get_run(db, SETTLER, first.id)

        # Recorded now, but they happened inside the finalized period: a redemption at the airline
        # (the till was offline) and a purchase the cafe sent late.
        _at(t0 + timedelta(hours=3))
        assert (await redeem(db, airline, member.member_number, 100)).errors == []
        await earn(db, cafe, member.member_number, "200", occurred_at=t0 + timedelta(minutes=150))
        _at(t0 + 11 * day)
        assert (await redeem(db, cafe, member.member_number, 50)).errors == []  # in the next period

        _at(t0 + 25 * day)
        second = await settlement.run_settlement(
            db, SETTLER, period_start=t0 + 10 * day, period_end=t0 + 20 * day
        )
    finally:
        clock.set_clock(None)

    # The finalized run is untouched.
    assert await settlement_queries.get_run(db, SETTLER, first.id) == frozen
    assert _lines(frozen, airline)[("REDEMPTION_RECEIVABLE", None, None, cafe.id)] == (300, Decimal("3.00"))

    assert _lines(second, airline) == {
        ("ADJUSTMENT", "REDEMPTION_RECEIVABLE", first.id, cafe.id): (100, Decimal("1.00"))
    }
    assert _lines(second, cafe) == {
        ("ADJUSTMENT", "REDEMPTION_PAYABLE", first.id, airline.id): (100, Decimal("-1.00")),
        ("ADJUSTMENT", "ISSUE_FEE", first.id, None): (200, Decimal("-0.20")),
        ("INTERNAL", None, None, cafe.id): (50, Decimal("0")),
    }
    assert second.original_periods[first.id] == (t0, t0 + 10 * day)
    assert sum((s.net for s in second.statements), Decimal(0)) == 0

    # Settled once: the run after the next one carries no adjustment for them again.
    await settlement.finalize_settlement(db, SETTLER, second.id)
    _at(t0 + 35 * day)
    try:
        third = await settlement.run_settlement(
            db, SETTLER, period_start=t0 + 20 * day, period_end=t0 + 30 * day
        )
    finally:
        clock.set_clock(None)
    assert _lines(third, airline) == {} and _lines(third, cafe) == {}
    assert await settlement_audit.audit_runs(db) == []


async def test_a_draft_computed_before_another_run_was_finalized_must_be_run_again(db):
    t0 = clock.now().replace(microsecond=0) - timedelta(days=2500)
    day = timedelta(days=1)
    older = await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=t0 + day)
    newer = await settlement.run_settlement(db, SETTLER, period_start=t0 + day, period_end=t0 + 2 * day)
    await settlement.finalize_settlement(db, SETTLER, newer.id)
    with pytest.raises(DomainError) as caught:
        await settlement.finalize_settlement(db, SETTLER, older.id)
    assert caught.value.errors[0].code == "STALE_DRAFT"
    again = await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=t0 + day)
    assert (await settlement.finalize_settlement(db, SETTLER, again.id)).status == "FINALIZED"


async def test_the_cutoff_waits_for_the_oldest_open_transaction(db):
    """A transaction still open when the run reads may yet commit rows stamped with its start; the
    run must not claim to have settled anything recorded from that instant on."""
    t0 = clock.now().replace(microsecond=0) - timedelta(days=2600)
    async with sql.transaction(db) as other:
        started = await other.fetchval("SELECT transaction_timestamp()")
        run = await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=1))
    assert run.recorded_before == started
    alone = await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=1))
    assert alone.recorded_before > started
