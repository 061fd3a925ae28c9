"""The worker's jobs: lots become available and expire exactly once, whoever runs them."""

# ruff: noqa: ASYNC220, ASYNC221  (the real worker process is started and killed on purpose)

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from datetime import timedelta

from sqlalchemy import text

from services.gateway.worker import run_job
from services.ledger.scheduled import activate_due_lots, expire_due_lots
from shared import clock
from tests.e2e.conftest import COALITION
from tests.factories import balance, earn, enroll, make_partner, violations

TWENTY_FIVE_MONTHS = timedelta(days=25 * 31)


async def _scalar(db, sql: str, **params):
    async with db.sessions() as session:
        return await session.scalar(text(sql), params)


async def test_expiry_moves_each_lot_to_its_issuers_breakage_account(db):
    cafe = await make_partner(db)
    airline = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "30")
    await earn(db, airline, member.member_number, "12")
    later = clock.now() + TWENTY_FIVE_MONTHS
    clock.set_clock(lambda: later)
    try:
        # Reads do not wait for the worker: the points are gone already.
        assert (await balance(db, member.id)).available == 0
        await run_job(db, expire_due_lots)
        assert (await balance(db, member.id)).available == 0
    finally:
        clock.set_clock(None)
    breakage = {}
    for partner in (cafe, airline):
        breakage[partner.id] = await _scalar(
            db,
            "SELECT COALESCE(SUM(p.amount), 0) FROM postings p JOIN ledger_accounts a"
            " ON a.id = p.account_id WHERE a.kind = 'PARTNER_BREAKAGE' AND a.partner_id = :p",
            p=partner.id,
        )
    assert breakage == {cafe.id: 30, airline.id: 12}
    entries = await _scalar(
        db,
        "SELECT count(*) FROM journal_entries WHERE kind = 'EXPIRE' AND member_id = :m",
        m=member.id,
    )
    assert entries == 2  # one per lot
    assert await violations(db, at=later) == []


async def test_an_expiry_is_dated_when_the_points_expired_not_when_the_worker_ran(db):
    """The ruling: breakage belongs to the period in which points expired. A worker that runs a
    week late posts the expiry with the lot's `expires_at` as its instant; only its recording
    time (`created_at`) says when it was posted, which is what settlement's late arrivals use."""
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "30")
    expires_at = await _scalar(db, "SELECT expires_at FROM lots WHERE member_id = :m", m=member.id)
    week_late = expires_at + timedelta(days=7)
    clock.set_clock(lambda: week_late)
    try:
        await run_job(db, expire_due_lots)
    finally:
        clock.set_clock(None)
    entry_at = await _scalar(
        db, "SELECT occurred_at FROM journal_entries WHERE kind = 'EXPIRE' AND member_id = :m", m=member.id
    )
    consumed_at = await _scalar(
        db, "SELECT occurred_at FROM lot_consumptions WHERE kind = 'EXPIRY' AND member_id = :m", m=member.id
    )
    expired_at = await _scalar(db, "SELECT expired_at FROM lots WHERE member_id = :m", m=member.id)
    assert entry_at == consumed_at == expires_at
    assert expired_at == week_late  # when the worker recorded it
    assert await violations(db, at=week_late) == []


async def test_activation_is_recorded_once_the_return_window_passes(db):
    airline = await make_partner(db, return_window_days=14)
    cafe = await make_partner(db)
    member = await enroll(db, airline)
    await earn(db, airline, member.member_number, "10")
    await earn(db, cafe, member.member_number, "10")
    activated = "SELECT count(*) FROM lots WHERE member_id = :m AND activated_at IS NOT NULL"
    assert await _scalar(db, activated, m=member.id) == 1  # the café's, at once
    await activate_due_lots(db, clock.now())
    assert await _scalar(db, activated, m=member.id) == 1
    await activate_due_lots(db, clock.now() + timedelta(days=15))
    assert await _scalar(db, activated, m=member.id) == 2


async def _lots_for(db, partner, members: int, per_member: int) -> list[int]:
    enrolled = [await enroll(db, partner) for _ in range(members)]

    async def earn_all(member) -> None:
        for _ in range(per_member):
            outcome = await earn(db, partner, member.member_number, "3")
            assert outcome.errors == []

    for start in range(0, members, 25):
        await asyncio.gather(*(earn_all(m) for m in enrolled[start : start + 25]))
    return [m.id for m in enrolled]


EXPIRED_ONCE = """
SELECT count(*) FILTER (WHERE n = 1) AS once, count(*) FILTER (WHERE n <> 1) AS other
FROM (SELECT l.id, count(c.id) AS n FROM lots l
      LEFT JOIN lot_consumptions c ON c.lot_id = l.id AND c.kind = 'EXPIRY'
      WHERE l.issuing_partner_id = :p GROUP BY l.id) s
"""


async def test_two_workers_over_ten_thousand_lots_expire_each_exactly_once(db):
    partner = await make_partner(db)
    await _lots_for(db, partner, members=400, per_member=25)
    later = clock.now() + TWENTY_FIVE_MONTHS
    clock.set_clock(lambda: later)
    try:
        first, second = await asyncio.gather(
            run_job(db, expire_due_lots, 200), run_job(db, expire_due_lots, 200)
        )
    finally:
        clock.set_clock(None)
    async with db.sessions() as session:
        row = (await session.execute(text(EXPIRED_ONCE), {"p": partner.id})).one()
    assert (row.once, row.other) == (10_000, 0)
    assert first.rows + second.rows >= 10_000  # other tests' lots fall due too
    assert await violations(db, at=later) == []


async def test_a_worker_killed_mid_run_loses_and_doubles_nothing(db, database_url):
    partner = await make_partner(db)
    await _lots_for(db, partner, members=100, per_member=20)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "COALITION_CLOCK_OFFSET_SECONDS": str(TWENTY_FIVE_MONTHS.total_seconds()),
    }
    worker = subprocess.Popen(
        [COALITION, "worker", "--batch", "20", "--interval", "60"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    expired = "SELECT count(*) FROM lots WHERE issuing_partner_id = :p AND expired_at IS NOT NULL"
    try:
        deadline = time.monotonic() + 60
        while await _scalar(db, expired, p=partner.id) == 0:
            assert time.monotonic() < deadline, "the worker never started expiring"
            await asyncio.sleep(0.01)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    done_before = await _scalar(db, expired, p=partner.id)
    finished = subprocess.run(
        [COALITION, "worker", "--once"], env=env, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    async with db.sessions() as session:
        row = (await session.execute(text(EXPIRED_ONCE), {"p": partner.id})).one()
    assert (row.once, row.other) == (2_000, 0)
    assert 0 < done_before < 2_000  # it really was killed mid-run
    assert await violations(db, at=clock.now() + TWENTY_FIVE_MONTHS) == []
