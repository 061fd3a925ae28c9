"""The ledger's scheduled jobs (run by `coalition worker`): holds past their time are released,
lots become available, and expire.

The lot jobs work in batches of thousands of lots per statement and take their rows with
`FOR UPDATE SKIP LOCKED`, so any number of workers can run at once: each lot is handled by exactly
one of them, nobody waits on anybody, and a member whose wallet is busy (an earn or redemption in
flight) is simply left for the next round. Each batch is one transaction: a worker killed
mid-batch loses and doubles nothing.

Reads never wait for these jobs: balances already count a lot by its timestamps, and a hold by
its `expires_at`. The jobs make the facts durable (`activated_at`, the EXPIRE entries that move
points to the issuer's breakage account) so that settlement and notifications see each of them
exactly once. Each batch writes its events in its own transaction: one points.earned (status
AVAILABLE) per earn whose lots it activated, one points.expired per member whose lots it expired
(a member's lots normally fall in one batch of a round; past DEFAULT_BATCH due lots, a member may
get one event per batch). An expiry is dated
at the lot's `expires_at`, whenever the worker posts it: breakage falls in the period in which the
points expired, and a worker that was down across a period's end shows up in settlement as a late
arrival, settled by the next run.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from asyncpg import Record

from services.ledger import events, live
from services.ledger.live import BalanceChangeReason
from services.members import service as members
from shared.database import Database
from shared.outbox import Event, EventType, record_events
from shared.sql import DbConnection, Sql, transaction

DEFAULT_BATCH = 5_000

RELEASE_EXPIRED = Sql(
    """
WITH due AS (
  SELECT id FROM holds WHERE status = 'ACTIVE' AND expires_at <= :now
  ORDER BY expires_at LIMIT :batch FOR UPDATE SKIP LOCKED
)
UPDATE holds SET status = 'EXPIRED', closed_at = holds.expires_at FROM due WHERE holds.id = due.id
RETURNING holds.member_id
"""
)


ACTIVATE = Sql(
    """
WITH due AS (
  SELECT id FROM lots
  WHERE activated_at IS NULL AND available_at <= :now
  ORDER BY available_at
  LIMIT :batch
  FOR UPDATE SKIP LOCKED
)
UPDATE lots SET activated_at = :now FROM due WHERE lots.id = due.id
RETURNING lots.member_id, lots.earn_entry_id, lots.remaining, lots.issuing_partner_id,
  -- for points.earned: the earn's partner (the purchase's, for a coalition lot too), order, kind
  (SELECT jsonb_build_array(e.partner_id, e.order_id, e.kind)::text FROM journal_entries e
   WHERE e.id = lots.earn_entry_id) AS earn
"""
)

# Lots are taken first (skipping locked ones), then their wallets (skipping busy ones): the job
# never waits, so it cannot deadlock with member operations, which lock wallet then lots.
EXPIRE = Sql(
    """
WITH due AS (
  SELECT id, member_id, issuing_partner_id, remaining, expires_at FROM lots
  WHERE expired_at IS NULL AND remaining > 0 AND expires_at <= :now
    AND NOT EXISTS (  -- a live hold keeps its lots until it is captured or released
      SELECT 1 FROM hold_lots hl JOIN holds h ON h.id = hl.hold_id
      WHERE hl.lot_id = lots.id AND h.status = 'ACTIVE' AND h.expires_at > :now)
  ORDER BY expires_at
  LIMIT :batch
  FOR UPDATE SKIP LOCKED
), free_wallets AS (
  SELECT member_id, account_id FROM wallets
  WHERE member_id IN (SELECT member_id FROM due)
  ORDER BY member_id
  FOR UPDATE SKIP LOCKED
), todo AS (
  SELECT due.id, due.member_id, due.issuing_partner_id, due.remaining, due.expires_at,
         fw.account_id AS wallet,
         b.id AS breakage, nextval(pg_get_serial_sequence('journal_entries', 'id')) AS entry_id
  FROM due
  JOIN free_wallets fw ON fw.member_id = due.member_id
  JOIN ledger_accounts b ON b.kind = 'PARTNER_BREAKAGE' AND b.partner_id = due.issuing_partner_id
                        AND b.member_id IS NULL
), entries AS (
  INSERT INTO journal_entries (id, kind, member_id, partner_id, points, occurred_at)
  SELECT entry_id, 'EXPIRE', member_id, issuing_partner_id, -remaining, expires_at FROM todo
), postings AS (
  INSERT INTO postings (entry_id, account_id, amount)
  SELECT entry_id, wallet, -remaining FROM todo
  UNION ALL
  SELECT entry_id, breakage, remaining FROM todo
), consumed AS (
  INSERT INTO lot_consumptions (entry_id, lot_id, member_id, kind, points, issuing_partner_id,
                                occurred_at)
  SELECT entry_id, id, member_id, 'EXPIRY', remaining, issuing_partner_id, expires_at FROM todo
), emptied AS (
  UPDATE lots SET remaining = 0, expired_at = CAST(:now AS timestamptz)
  FROM todo WHERE lots.id = todo.id
), debited AS (
  UPDATE wallets SET balance = balance - t.points
  FROM (SELECT member_id, SUM(remaining) AS points FROM todo GROUP BY member_id) t
  WHERE wallets.member_id = t.member_id
)
SELECT (SELECT count(*) FROM due) AS taken, count(*) AS lots, COALESCE(SUM(remaining), 0) AS points,
       COALESCE(array_agg(DISTINCT member_id), '{}') AS members,
       -- per member and issuer, for the points.expired events: [[member, issuer, points], ...]
       (SELECT COALESCE(jsonb_agg(jsonb_build_array(member_id, issuing_partner_id, points)), '[]')::text
        FROM (SELECT member_id, issuing_partner_id, SUM(remaining) AS points FROM todo
              GROUP BY 1, 2) g) AS expired
FROM todo
"""
)


@dataclass(frozen=True)
class BatchResult:
    rows: int  # rows handled: lots, or holds (the job's `unit` says which)
    points: int = 0
    skipped: int = 0  # due, but the member's wallet was busy: next round

    @property
    def more(self) -> bool:
        return self.rows > 0


async def release_expired_holds(db: Database, now: datetime, batch: int = DEFAULT_BATCH) -> BatchResult:
    """Records EXPIRED on holds past their time (reads already ignore them)."""
    async with transaction(db) as conn:
        released = await RELEASE_EXPIRED.fetch(conn, now=now, batch=batch)
        await live.notify_many(conn, (r["member_id"] for r in released), BalanceChangeReason.HOLD_EXPIRY, now)
    return BatchResult(rows=len(released))


async def activate_due_lots(db: Database, now: datetime, batch: int = DEFAULT_BATCH) -> BatchResult:
    """Lots past their return window become available, each with points.earned (AVAILABLE) for
    its earn, in the batch's transaction (`_activation_events`)."""
    async with transaction(db) as conn:
        activated = await ACTIVATE.fetch(conn, now=now, batch=batch)
        await _activation_events(conn, activated, now)
        await live.notify_many(conn, (r["member_id"] for r in activated), BalanceChangeReason.ACTIVATION, now)
    return BatchResult(rows=len(activated))


async def _activation_events(conn: DbConnection, activated: list[Record], now: datetime) -> None:
    """One points.earned (status AVAILABLE) per earn whose lots this batch activated: the points
    they still hold (a refund inside the return window took the rest back; an earn with nothing
    left says nothing). A coalition-funded earn's two lots make one event, unless a batch
    boundary falls between them (then one event each, their points adding up to the earn's)."""
    by_entry: dict[int, list[Record]] = {}
    for r in activated:
        if r["earn"] is not None:  # an earn entry always exists (the audit checks the reference)
            by_entry.setdefault(r["earn_entry_id"], []).append(r)
    due = {e: rows for e, rows in by_entry.items() if sum(r["remaining"] for r in rows) > 0}
    if not due:
        return
    numbers = await members.member_numbers(conn, sorted({rows[0]["member_id"] for rows in due.values()}))
    found = []
    for entry_id in sorted(due):
        first = due[entry_id][0]
        if first["member_id"] not in numbers:
            continue
        partner_id, order_id, kind = json.loads(first["earn"])
        data = events.points_earned(
            member_number=numbers[first["member_id"]],
            partner_id=partner_id,
            entry_id=entry_id,
            points=sum(r["remaining"] for r in due[entry_id]),
            status=events.EarnStatus.AVAILABLE,
            order_id=order_id,
            source=events.source_of(kind),
            # the coalition's lot of the earn is the one another issuer than the earn's partner holds
            coalition_points=sum(
                r["remaining"] for r in due[entry_id] if r["issuing_partner_id"] != partner_id
            ),
        )
        found.append(
            Event(
                EventType.POINTS_EARNED,
                data,
                member_id=first["member_id"],
                partner_ids=(partner_id,),
                occurred_at=now,
            )
        )
    await record_events(conn, found)


async def expire_due_lots(db: Database, now: datetime, batch: int = DEFAULT_BATCH) -> BatchResult:
    """Posts the expiry of due lots, and one points.expired per member of the batch (with the
    points of each issuer), in the batch's transaction."""
    async with transaction(db) as conn:
        row = await EXPIRE.fetchrow(conn, now=now, batch=batch)
        assert row is not None
        await events.record_expiries(conn, [tuple(x) for x in json.loads(row["expired"])], now)
        await live.notify_many(conn, row["members"], BalanceChangeReason.EXPIRY, now)
    return BatchResult(rows=row["lots"], points=int(row["points"]), skipped=row["taken"] - row["lots"])


Job = Callable[[Database, datetime, int], Awaitable[BatchResult]]


def counted(n: int, noun: str) -> str:
    """`3 lots`, `1 lot`: what a report says a job did."""
    return f"{n:,} {noun if n == 1 else noun + 's'}"


class ScheduledJob(NamedTuple):
    """A job, what its rows are, and how to say what a round of it did: a hold released is not a
    lot, and an operator reading "3 lots" after holds were released is misled."""

    name: str
    unit: str  # what BatchResult.rows counts
    run: Job
    report: Callable[[BatchResult], str]
    # Delivers what committed changes wrote to the outbox: the worker also runs it as soon as it
    # hears of a points move, not only every round, so webhooks and mail follow within a moment.
    on_events: bool = False


def _released(r: BatchResult) -> str:
    return f"released {counted(r.rows, 'expired hold')}"


def _activated(r: BatchResult) -> str:
    return f"activated {counted(r.rows, 'lot')} past their return window"


def _expired(r: BatchResult) -> str:
    busy = f"; {counted(r.skipped, 'lot')} left for later (busy wallets)" if r.skipped else ""
    return f"expired {counted(r.rows, 'lot')} ({counted(r.points, 'point')}){busy}"


# In the order a round runs them: holds released first free their lots for expiry.
JOBS: list[ScheduledJob] = [
    ScheduledJob("release-holds", "holds", release_expired_holds, _released),
    ScheduledJob("activate-lots", "lots", activate_due_lots, _activated),
    ScheduledJob("expire-lots", "lots", expire_due_lots, _expired),
]
