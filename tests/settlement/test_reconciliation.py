"""Reconciliation: a partner's CSV matched against the ledger, disputes, and the finalize gate."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from services.settlement import queries as settlement_queries
from services.settlement import reconciliation as rec
from services.settlement import service as settlement
from shared import clock
from shared.errors import DomainError, Forbidden
from tests.factories import earn, enroll, make_partner, redeem, reverse, unique
from tests.settlement.test_settlement import SETTLER


async def _period_with_orders(db, days_ago: int):
    """A cafe's period: two purchases (one partly refunded twice) and a redemption; a run of it."""
    t0 = clock.now().replace(microsecond=0) - timedelta(days=days_ago)
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    orders = {name: unique(name) for name in ("coffee", "cake", "spend")}
    try:
        clock.set_clock(lambda: t0 + timedelta(hours=1))
        await earn(db, cafe, member.member_number, "1000", order_id=orders["coffee"])
        await earn(db, cafe, member.member_number, "300", order_id=orders["cake"])
        clock.set_clock(lambda: t0 + timedelta(hours=2))
        await reverse(db, cafe, orders["cake"], "100")
        await reverse(db, cafe, orders["cake"], "50")
        assert (await redeem(db, cafe, member.member_number, 120, order_id=orders["spend"])).errors == []
        clock.set_clock(lambda: t0 + timedelta(days=2))
        run = await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=1))
    finally:
        clock.set_clock(None)
    return t0, cafe, orders, run


def _csv(rows):
    return "orderId,kind,points,occurredAt\n" + "".join(f"{','.join(map(str, r))}\n" for r in rows)


async def test_each_difference_is_a_dispute_and_finalizing_waits_for_them(db):
    t0, cafe, o, run = await _period_with_orders(db, 3000)
    at = (t0 + timedelta(hours=1)).isoformat()
    report = await rec.submit_reconciliation(
        db,
        cafe.principal,
        run_id=run.id,
        partner_id=None,
        csv_text=_csv(
            [
                (o["coffee"], "EARN", 1000, at),  # matched
                (o["cake"], "earn", 250, at),  # the till says 250, the ledger 300
                (o["cake"], "REVERSE", 100, at),  # two refunds of one order, summed: matched
                (o["cake"], "REVERSE", 50, at),
                ("walk-in-7", "EARN", 40, at),  # never reached the coalition
                # the redemption is missing from the cafe's file
            ]
        ),
    )
    assert report.counts == {
        "MATCHED": 2,
        "MISSING_IN_LEDGER": 1,
        "MISSING_IN_PARTNER_FILE": 1,
        "POINTS_MISMATCH": 1,
    }
    assert report.rows == 5 and report.open_disputes == 3
    page = await rec.items(db, SETTLER, report, status=None, disputes_only=True, first=10, after=None)
    disputes = {(i.order_id, i.kind): (i.status, i.ledger_points, i.partner_points) for _, i in page.items}
    assert disputes == {
        (o["cake"], "EARN"): ("POINTS_MISMATCH", 300, 250),
        ("walk-in-7", "EARN"): ("MISSING_IN_LEDGER", None, 40),
        (o["spend"], "REDEEM"): ("MISSING_IN_PARTNER_FILE", 120, None),
    }

    with pytest.raises(DomainError) as caught:
        await settlement.finalize_settlement(db, SETTLER, run.id)
    assert caught.value.errors[0].code == "OPEN_DISPUTES"

    ids = {i.order_id: i.id for _, i in page.items}
    resolved = await rec.resolve_dispute(
        db, SETTLER, item_id=ids[o["cake"]], note="till rounding; the ledger is right"
    )
    assert resolved.resolved_by == SETTLER.client_id and resolved.resolution_note.startswith("till")
    with pytest.raises(DomainError) as caught:
        await rec.resolve_dispute(db, SETTLER, item_id=ids[o["cake"]], note="again")
    assert caught.value.errors[0].code == "ALREADY_RESOLVED"
    with pytest.raises(DomainError) as caught:
        await rec.resolve_dispute(db, SETTLER, item_id=ids["walk-in-7"], note="  ")
    assert caught.value.errors[0].field == "note"
    matched = await rec.items(
        db, SETTLER, report, status="MATCHED", disputes_only=False, first=10, after=None
    )
    with pytest.raises(DomainError) as caught:
        await rec.resolve_dispute(db, SETTLER, item_id=matched.items[0][1].id, note="nothing to do")
    assert caught.value.errors[0].code == "NOT_A_DISPUTE"

    with pytest.raises(DomainError):  # two still open
        await settlement.finalize_settlement(db, SETTLER, run.id)
    final = await settlement.finalize_settlement(db, SETTLER, run.id, override_open_disputes=True)
    assert final.status == "FINALIZED" and final.finalized_over_open_disputes == 2
    stored = await settlement_queries.get_run(db, SETTLER, run.id)
    assert stored.finalized_over_open_disputes == 2
    with pytest.raises(DomainError) as caught:  # the final run's record stays as it was
        await rec.submit_reconciliation(db, cafe.principal, run_id=run.id, partner_id=None, csv_text=_csv([]))
    assert caught.value.errors[0].code == "RUN_FINAL"
    assert (await rec.get_reconciliation(db, SETTLER, report.id)).open_disputes == 2


async def test_a_bad_file_names_every_bad_line_and_changes_nothing(db):
    t0, cafe, o, run = await _period_with_orders(db, 3100)
    at = (t0 + timedelta(hours=1)).isoformat()
    good = await rec.submit_reconciliation(
        db, cafe.principal, run_id=run.id, partner_id=None, csv_text=_csv([(o["coffee"], "EARN", 1000, at)])
    )
    bad = _csv(
        [
            (o["coffee"], "EARN", 1000, at),
            (o["cake"], "GIFT", 300, at),  # line 3
            ("", "EARN", "12.5", at),  # line 4: two problems
            (o["cake"], "EARN", 300, "yesterday"),  # line 5
            (o["cake"], "EARN", 300, (t0 - timedelta(days=1)).isoformat()),  # line 6: outside
            (o["cake"], "EARN", 300, "2020-01-01T00:00:00"),  # line 7: no offset
        ]
    )
    with pytest.raises(DomainError) as caught:
        await rec.submit_reconciliation(db, cafe.principal, run_id=run.id, partner_id=None, csv_text=bad)
    messages = [e.message for e in caught.value.errors]
    assert [m.split(":")[0] for m in messages] == ["line 3", "line 4", "line 4", "line 5", "line 6", "line 7"]
    assert "kind" in messages[0] and "orderId" in messages[1] and "points" in messages[2]
    assert "outside the run's period" in messages[4] and "time zone" in messages[5]
    assert {e.field for e in caught.value.errors} == {"csv"}
    # The earlier upload is still the partner's reconciliation, untouched.
    assert await rec.get_reconciliation(db, SETTLER, good.id) == good

    with pytest.raises(DomainError) as caught:
        await rec.submit_reconciliation(
            db, cafe.principal, run_id=run.id, partner_id=None, csv_text="a,b\n1,2\n"
        )
    assert caught.value.errors[0].code == "INVALID_HEADER"
    assert "orderId" in caught.value.errors[0].message


async def test_partners_reconcile_only_themselves(db):
    t0, cafe, o, run = await _period_with_orders(db, 3200)
    other = await make_partner(db)
    at = (t0 + timedelta(hours=1)).isoformat()
    mine = await rec.submit_reconciliation(
        db, cafe.principal, run_id=run.id, partner_id=None, csv_text=_csv([(o["coffee"], "EARN", 1000, at)])
    )
    with pytest.raises(Forbidden):
        await rec.submit_reconciliation(db, other.principal, run_id=run.id, partner_id=cafe.id, csv_text="")
    read_only = replace(other.principal, scopes=frozenset({"settlement:read"}))
    with pytest.raises(Forbidden):
        await rec.submit_reconciliation(db, read_only, run_id=run.id, partner_id=None, csv_text="")
    assert await rec.get_reconciliation(db, other.principal, mine.id) is None
    assert await rec.get_reconciliation(db, cafe.principal, mine.id) == mine
    assert await rec.run_reconciliations(db, other.principal, run.id) == []
    # The other partner's empty file: everything it did in the period is missing from it, nothing else.
    theirs = await rec.submit_reconciliation(
        db, other.principal, run_id=run.id, partner_id=None, csv_text=_csv([])
    )
    assert sum(theirs.counts.values()) == 0
    assert {r.partner_id for r in await rec.run_reconciliations(db, SETTLER, run.id)} == {cafe.id, other.id}
    with pytest.raises(DomainError) as caught:  # an admin must say for whom
        await rec.submit_reconciliation(db, SETTLER, run_id=run.id, partner_id=None, csv_text=_csv([]))
    assert caught.value.errors[0].field == "partnerId"
    with pytest.raises(DomainError) as caught:
        await rec.submit_reconciliation(db, SETTLER, run_id=run.id, partner_id=10**12, csv_text=_csv([]))
    assert caught.value.errors[0].code == "PARTNER_NOT_FOUND"
    # A credential that may only upload still reads what its upload found.
    uploader = replace(cafe.principal, scopes=frozenset({"settlement:reconcile"}))
    again = await rec.submit_reconciliation(
        db, uploader, run_id=run.id, partner_id=None, csv_text=_csv([(o["coffee"], "EARN", 1000, at)])
    )
    found = await rec.items(db, uploader, again, status=None, disputes_only=False, first=10, after=None)
    assert len(found.items) == 4  # coffee matched; cake's earn and refunds and the redemption missing


async def test_concurrent_uploads_of_one_partner_take_turns(db):
    t0, cafe, o, run = await _period_with_orders(db, 3300)
    at = (t0 + timedelta(hours=1)).isoformat()
    files = [_csv([(o["coffee"], "EARN", points, at)]) for points in (1000, 999, 998, 997, 996, 995)]
    done = await asyncio.gather(
        *[
            rec.submit_reconciliation(db, cafe.principal, run_id=run.id, partner_id=None, csv_text=f)
            for f in files
        ]
    )
    kept = await rec.run_reconciliations(db, SETTLER, run.id)
    assert [r.id for r in kept] == [max(r.id for r in done)]  # the last upload replaced the others
    assert sum(kept[0].counts.values()) == 4
