"""Settlement of a hand-computed three-partner story, and the run lifecycle."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway.worker import run_job
from services.ledger.scheduled import expire_due_lots
from services.settlement import audit as settlement_audit
from services.settlement import queries as settlement_queries
from services.settlement import service as settlement
from services.settlement.compute import Obligation, allocate, statement_lines
from shared import clock, sql
from shared.errors import DomainError
from shared.ids import to_global_id
from tests.factories import ADMIN, cancel, earn, enroll, link, make_partner, redeem, reverse, unique

SETTLER = ADMIN.__class__(client_id="settler", scopes=frozenset({"admin:settlement"}))


def _at(moment):
    clock.set_clock(lambda: moment)


async def _new_contract(db, partner, effective_from):
    from services.partners import service as partners

    await partners.update_contract(
        db,
        ADMIN,
        partner_id=partner.id,
        effective_from=effective_from,
        issue_price=Decimal("0.015"),
        redeem_price=Decimal("0.020"),
        issue_fee_per_point=Decimal("0.003"),
        breakage_share=Decimal("0.5"),
    )


async def _story(db, t0):
    cafe = await make_partner(
        db,
        issue_price="0.010",
        redeem_price="0.008",
        issue_fee_per_point=Decimal("0.001"),
        breakage_share=Decimal("0.5"),
    )
    airline = await make_partner(
        db,
        issue_price="0.012",
        redeem_price="0.010",
        issue_fee_per_point=Decimal("0.002"),
        breakage_share=Decimal("0.4"),
    )
    books = await make_partner(db, issue_price="0.010", redeem_price="0.009")
    member = await enroll(db, cafe)
    await link(db, airline, member)
    await link(db, books, member)
    order = unique("o")
    try:
        # The airline's new contract takes effect mid-period, at 02:30: what happened before is
        # priced at the old terms, what happened after at the new ones.
        _at(t0)
        await _new_contract(db, airline, t0 + timedelta(minutes=150))
        _at(t0 + timedelta(hours=1))
        await earn(db, cafe, member.member_number, "1000", order_id=order)
        _at(t0 + timedelta(hours=2))
        await earn(db, airline, member.member_number, "500")
        _at(t0 + timedelta(hours=3))
        assert (await redeem(db, airline, member.member_number, 300)).errors == []
        _at(t0 + timedelta(hours=4))
        spent = await redeem(db, books, member.member_number, 200)
        _at(t0 + timedelta(hours=5))
        assert (
            await cancel(db, books, to_global_id("Redemption", spent.result["redemption_id"]))
        ).errors == []
        _at(t0 + timedelta(hours=6))
        assert (await redeem(db, cafe, member.member_number, 100)).errors == []
        _at(t0 + timedelta(hours=7))
        assert (await reverse(db, cafe, order, "500")).result["points"] == 500
        # 40 airline points earned two years ago run out inside the period.
        _at(t0 + timedelta(days=1))
        expiring_on = t0 + timedelta(days=2)
        await earn(db, airline, member.member_number, "40", occurred_at=clock.add_months(expiring_on, -24))
        _at(t0 + timedelta(days=3))
        await run_job(db, expire_due_lots)
    finally:
        clock.set_clock(None)
    return cafe, airline, books, member


def _by_partner(run):
    return {s.partner_id: s for s in run.statements}


async def test_three_partner_story_statements(db):
    t0 = clock.now().replace(microsecond=0) - timedelta(days=500)
    cafe, airline, books, member = await _story(db, t0)
    run = await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=10))
    statements = _by_partner(run)
    cafe_lines = {(x.kind, x.counterparty_id): (x.points, x.amount) for x in statements[cafe.id].lines}
    assert cafe_lines == {
        ("REDEMPTION_PAYABLE", airline.id): (300, Decimal("-6.00")),  # at 03:00: the new 0.020
        ("INTERNAL", cafe.id): (100, Decimal("0")),
        ("ISSUE_FEE", None): (500, Decimal("-0.50")),  # 1,000 issued, 500 refunded
    }
    airline_lines = {(x.kind, x.counterparty_id): (x.points, x.amount) for x in statements[airline.id].lines}
    assert airline_lines == {
        ("REDEMPTION_RECEIVABLE", cafe.id): (300, Decimal("6.00")),
        ("ISSUE_FEE", None): (500, Decimal("-1.00")),  # earned at 02:00: the old 0.002
        ("BREAKAGE", None): (40, Decimal("-0.30")),  # expired on day 3: 40 x 0.015 x 0.5
    }
    assert books.id not in statements  # a redemption and its cancellation net to nothing
    assert statements[cafe.id].net == Decimal("-6.50")
    assert statements[cafe.id].direction == "PAY_IN"
    assert statements[airline.id].net == Decimal("4.70")
    assert statements[airline.id].direction == "PAY_OUT"
    # The coalition's fees and breakage from these three (the expiry job also expired other tests'
    # lots inside this period, and the coalition's statement covers every partner).
    ours = {cafe.id, airline.id, books.id}
    assert sum(x.amount for x in statements[None].lines if x.counterparty_id in ours) == Decimal("1.80")
    assert sum((s.net for s in run.statements), Decimal(0)) == 0

    again = await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=10))
    assert again.content_hash == run.content_hash and again.id != run.id
    assert await settlement_queries.get_run(db, SETTLER, run.id) is None  # the draft was replaced

    final = await settlement.finalize_settlement(db, SETTLER, again.id)
    assert final.status == "FINALIZED"
    with pytest.raises(DomainError) as caught:
        await settlement.run_settlement(
            db, SETTLER, period_start=t0 + timedelta(days=5), period_end=t0 + timedelta(days=15)
        )
    assert caught.value.errors[0].code == "PERIOD_FINALIZED"
    assert (await settlement.mark_settlement_paid(db, SETTLER, again.id)).status == "PAID"

    # A late arrival: the books till was offline; its 50-point redemption at 06:30 reaches the
    # ledger only now. The finalized run is untouched; the next run settles it, naming the period.
    try:
        _at(t0 + timedelta(hours=6, minutes=30))
        assert (await redeem(db, books, member.member_number, 50)).errors == []
        _at(t0 + timedelta(days=25))
        following = await settlement.run_settlement(
            db, SETTLER, period_start=t0 + timedelta(days=10), period_end=t0 + timedelta(days=20)
        )
    finally:
        clock.set_clock(None)
    assert await settlement_queries.get_run(db, SETTLER, again.id) == replace(final, status="PAID")
    late = _by_partner(following)
    assert [
        (x.kind, x.adjusted_kind, x.original_run_id, x.counterparty_id, x.points, x.amount)
        for x in late[cafe.id].lines
    ] == [
        ("ADJUSTMENT", "REDEMPTION_PAYABLE", again.id, books.id, 50, Decimal("-0.45"))  # 50 x 0.009
    ]
    assert [(x.kind, x.adjusted_kind, x.counterparty_id, x.amount) for x in late[books.id].lines] == [
        ("ADJUSTMENT", "REDEMPTION_RECEIVABLE", cafe.id, Decimal("0.45"))
    ]
    assert following.original_periods[again.id] == (t0, t0 + timedelta(days=10))
    with pytest.raises(DomainError):
        await settlement.finalize_settlement(db, SETTLER, again.id)

    # A partner sees only its own statement.
    own = await settlement_queries.get_run(db, cafe.principal, again.id)
    assert [s.partner_id for s in own.statements] == [cafe.id]


async def test_a_second_run_at_once_is_refused(db):
    t0 = clock.now().replace(microsecond=0) - timedelta(days=900)
    async with sql.transaction(db) as conn:
        assert await settlement.LOCK.fetchval(conn)
        with pytest.raises(DomainError) as caught:
            await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=1))
    assert caught.value.errors[0].code == "SETTLEMENT_RUNNING"


async def test_bad_periods_are_named(db):
    now = clock.now()
    with pytest.raises(DomainError) as caught:
        await settlement.run_settlement(db, SETTLER, period_start=now, period_end=now - timedelta(1))
    assert caught.value.errors[0].field == "periodEnd"
    with pytest.raises(DomainError) as caught:
        await settlement.run_settlement(
            db, SETTLER, period_start=now - timedelta(days=1), period_end=now + timedelta(days=1)
        )
    assert caught.value.errors[0].code == "IN_FUTURE"


obligations = st.lists(
    st.tuples(
        st.sampled_from(["REDEMPTION", "ISSUE_FEE", "BREAKAGE"]),
        st.integers(1, 5),
        st.integers(1, 5),
        st.integers(-(10**7), 10**7).filter(bool),  # signed: cancellations can outweigh
        st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("0.05"), places=6),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(rows=obligations)
def test_rounding_is_exact_and_fair(rows):
    obs = [
        Obligation(k, payer, None if k != "REDEMPTION" else payee, points, Decimal(points) * price)
        for k, payer, payee, points, price in rows
    ]
    rounded = allocate(obs, "EUR")
    for o in rounded:
        assert abs(o.amount - o.exact) < Decimal("0.01")  # never a whole unit off
        assert o.amount == o.amount.quantize(Decimal("0.01"))
    lines = statement_lines(rounded)
    assert sum((x.amount for x in lines), Decimal(0)) == 0
    assert allocate(obs, "EUR") == rounded  # deterministic


async def test_a_contract_change_mid_period_prices_each_redemption_at_its_instant(db):
    from services.partners import service as partners

    cafe = await make_partner(db)
    airline = await make_partner(db, redeem_price="0.010")
    member = await enroll(db, cafe)
    await link(db, airline, member)
    t0 = clock.now().replace(microsecond=0)
    await earn(db, cafe, member.member_number, "1000")
    with pytest.raises(DomainError) as caught:  # the past is never repriced
        await partners.update_contract(
            db,
            ADMIN,
            partner_id=airline.id,
            effective_from=t0 - timedelta(hours=1),
            issue_price=Decimal("0.01"),
            redeem_price=Decimal("0.02"),
            issue_fee_per_point=Decimal(0),
            breakage_share=Decimal(0),
        )
    assert caught.value.errors[0].code == "IN_PAST"
    await partners.update_contract(
        db,
        ADMIN,
        partner_id=airline.id,
        effective_from=t0 + timedelta(hours=2),
        issue_price=Decimal("0.012"),
        redeem_price=Decimal("0.020"),
        issue_fee_per_point=Decimal(0),
        breakage_share=Decimal(0),
    )
    try:
        _at(t0 + timedelta(hours=1))
        assert (await redeem(db, airline, member.member_number, 100)).errors == []  # at 0.010
        _at(t0 + timedelta(hours=3))
        assert (await redeem(db, airline, member.member_number, 100)).errors == []  # at 0.020
        _at(t0 + timedelta(days=2))
        run = await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=1))
    finally:
        clock.set_clock(None)
    lines = {(x.kind, x.counterparty_id): (x.points, x.amount) for x in _by_partner(run)[airline.id].lines}
    assert lines[("REDEMPTION_RECEIVABLE", cafe.id)] == (200, Decimal("3.00"))  # 1.00 + 2.00


async def test_the_audit_notices_an_altered_final_run(db):
    from sqlalchemy import text

    t0 = clock.now().replace(microsecond=0) - timedelta(days=1200)
    await _story(db, t0)
    run = await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=10))
    await settlement.finalize_settlement(db, SETTLER, run.id)
    assert await settlement_audit.audit_runs(db) == []
    async with db.sessions() as session:  # a bad actor (or a bug) edits a finalized line
        await session.execute(
            text(
                "UPDATE settlement_lines SET amount = amount + 1 WHERE run_id = :r"
                " AND kind = 'REDEMPTION_RECEIVABLE'"
            ),
            {"r": run.id},
        )
        await session.commit()
    try:
        problems = dict(await settlement_audit.audit_runs(db))
        assert f"run {run.id} was altered" == problems["a final run matches its hash"]
        assert problems["settlement nets sum to zero"].startswith(f"run {run.id}:")
    finally:
        async with db.sessions() as session:
            await session.execute(
                text(
                    "UPDATE settlement_lines SET amount = amount - 1 WHERE run_id = :r"
                    " AND kind = 'REDEMPTION_RECEIVABLE'"
                ),
                {"r": run.id},
            )
            await session.commit()
    assert await settlement_audit.audit_runs(db) == []


async def test_listing_runs_needs_the_settlement_scope_in_the_service(db):
    from shared.errors import Forbidden

    partners_admin = ADMIN.__class__(client_id="ops", scopes=frozenset({"admin:partners"}))
    with pytest.raises(Forbidden):
        await settlement_queries.list_runs(db, partners_admin, first=5, after=None)
    assert (await settlement_queries.list_runs(db, SETTLER, first=5, after=None)).items is not None


async def test_a_contract_in_another_currency_refuses_the_run(db, monkeypatch):
    """The coalition settles in one currency (ruling): a period during which a contract priced in
    another is in force is refused, naming the partner; the periods around it settle as usual."""
    from services.partners import service as partners
    from shared.settings import get_settings

    t0 = clock.now().replace(microsecond=0) - timedelta(days=3600)
    shop = await make_partner(db, name=unique("Dollar Shop"))

    async def version(at, currency):
        monkeypatch.setenv("SETTLEMENT_CURRENCY", currency)
        get_settings.cache_clear()
        try:
            made = await partners.update_contract(
                db,
                ADMIN,
                partner_id=shop.id,
                effective_from=at,
                issue_price=Decimal("0.01"),
                redeem_price=Decimal("0.008"),
                issue_fee_per_point=Decimal(0),
                breakage_share=Decimal(0),
            )
        finally:
            monkeypatch.delenv("SETTLEMENT_CURRENCY")
            get_settings.cache_clear()
        assert made.currency == currency

    try:
        _at(t0)
        await version(t0 + timedelta(hours=10), "USD")  # in force from 10:00 to 12:00 only
        await version(t0 + timedelta(hours=12), "EUR")
    finally:
        clock.set_clock(None)
    with pytest.raises(DomainError) as caught:
        await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=1))
    assert [(e.code, e.field) for e in caught.value.errors] == [("CONTRACT_CURRENCY_MISMATCH", "periodStart")]
    assert shop.name in caught.value.errors[0].message and "USD" in caught.value.errors[0].message
    # The periods on either side of that contract's two hours settle as usual.
    before = await settlement.run_settlement(
        db, SETTLER, period_start=t0, period_end=t0 + timedelta(hours=10)
    )
    after = await settlement.run_settlement(
        db, SETTLER, period_start=t0 + timedelta(hours=12), period_end=t0 + timedelta(days=1)
    )
    assert before.currency == after.currency == "EUR"
