"""The expiring-points notice: the coalition's built-in re-engagement campaign.

No event causes it: a scan finds the members whose points expire within the next 30 days, per
member and expiry date (UTC) — a "lot batch": the lots earned on one day expire together — and
records one notification per (member, date) that has none yet. The unique (member_id,
expires_on) of `member_notifications` is the memory of which batches were noticed: a later scan
(tomorrow's, or a second worker's at the same instant) finds the row and records nothing, so a
member hears of a batch once, not daily; a new batch coming into the window is a new notice.

The window ends at the end of a whole UTC day (the day 30 days from now), so a batch is never
cut in two by the time of day the scan runs. The points are the batch's remaining points at the
scan. The scan reads the ledger's published view `ledger_open_lots`, never its tables.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from services.notifications.dispatch import Decided, record
from services.notifications.models import NotificationKind
from shared.database import Database
from shared.sql import Sql, transaction

NOTICE_WINDOW = timedelta(days=30)
# How often a worker runs the scan (it walks every lot expiring in the window): the notice is
# about dates weeks away, so an hour late is on time.
SCAN_INTERVAL = timedelta(hours=1)
SCAN_NAME = "points-expiring"

DUE = Sql(
    """
SELECT g.member_id, g.expires_on, g.points FROM (
  SELECT member_id, (expires_at AT TIME ZONE 'UTC')::date AS expires_on,
         CAST(SUM(remaining) AS bigint) AS points
  FROM ledger_open_lots
  WHERE expires_at > :now AND expires_at < :until
  GROUP BY 1, 2
) g
WHERE NOT EXISTS (
  SELECT 1 FROM member_notifications n WHERE n.member_id = g.member_id AND n.expires_on = g.expires_on)
ORDER BY g.expires_on, g.member_id
LIMIT :batch
"""
)

CLAIM_SCAN = Sql(
    "INSERT INTO notification_scans (name, last_run_at) VALUES (:name, :now)"
    " ON CONFLICT (name) DO UPDATE SET last_run_at = EXCLUDED.last_run_at"
    " WHERE notification_scans.last_run_at <= CAST(:due_before AS timestamptz)"
    " RETURNING 1"
)


def window_end(now: datetime) -> datetime:
    """The end of the UTC day 30 days from `now`: the scan covers whole expiry dates."""
    last_day = (now + NOTICE_WINDOW).astimezone(now.tzinfo).date()
    return datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=now.tzinfo)


async def scan_batch(db: Database, now: datetime, batch: int) -> int:
    """One batch of the scan in one transaction; returns how many notices it recorded (0: done).
    Every batch found is recorded (SKIPPED for those who get no mail), so the scan ends."""
    async with transaction(db) as conn:
        due = await DUE.fetch(conn, now=now, until=window_end(now), batch=batch)
        decided = [
            Decided(
                r["member_id"],
                NotificationKind.POINTS_EXPIRING,
                {"points": r["points"], "expiresOn": r["expires_on"].isoformat()},
                expires_on=r["expires_on"],
            )
            for r in due
        ]
        await record(conn, decided, now)
    return len(decided)


async def scan(db: Database, now: datetime, batch: int) -> int:
    """The whole scan, batch after batch; returns how many notices it recorded."""
    total = 0
    while found := await scan_batch(db, now, batch):
        total += found
    return total


async def claim_scan(db: Database, now: datetime) -> bool:
    """Whether this worker runs the scan now: at most once per SCAN_INTERVAL across all workers."""
    async with transaction(db) as conn:
        return bool(await CLAIM_SCAN.fetchval(conn, name=SCAN_NAME, now=now, due_before=now - SCAN_INTERVAL))
