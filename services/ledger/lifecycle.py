"""The scheduled side of a point's life: lots become available, and expire.

Both jobs work in batches of thousands of lots per statement and take their rows with
`FOR UPDATE SKIP LOCKED`, so any number of workers can run at once: each lot is handled by exactly
one of them, nobody waits on anybody, and a member whose wallet is busy (an earn or redemption in
flight) is simply left for the next round. Each batch is one transaction: a worker killed
mid-batch loses and doubles nothing.

Reads never wait for these jobs: balances already count a lot by its timestamps. The jobs make the
facts durable (`activated_at`, the EXPIRE entries that move points to the issuer's breakage
account) so that settlement and notifications see each of them exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.database import Database
from shared.sql import Sql, transaction

DEFAULT_BATCH = 5_000

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
"""
)

# Lots are taken first (skipping locked ones), then their wallets (skipping busy ones): the job
# never waits, so it cannot deadlock with member operations, which lock wallet then lots.
EXPIRE = Sql(
    """
WITH due AS (
  SELECT id, member_id, issuing_partner_id, remaining FROM lots
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
  SELECT due.id, due.member_id, due.issuing_partner_id, due.remaining, fw.account_id AS wallet,
         b.id AS breakage, nextval(pg_get_serial_sequence('journal_entries', 'id')) AS entry_id
  FROM due
  JOIN free_wallets fw ON fw.member_id = due.member_id
  JOIN ledger_accounts b ON b.kind = 'PARTNER_BREAKAGE' AND b.partner_id = due.issuing_partner_id
                        AND b.member_id IS NULL
), entries AS (
  INSERT INTO journal_entries (id, kind, member_id, partner_id, points, occurred_at)
  SELECT entry_id, 'EXPIRE', member_id, issuing_partner_id, -remaining, CAST(:now AS timestamptz)
  FROM todo
), postings AS (
  INSERT INTO postings (entry_id, account_id, amount)
  SELECT entry_id, wallet, -remaining FROM todo
  UNION ALL
  SELECT entry_id, breakage, remaining FROM todo
), consumed AS (
  INSERT INTO lot_consumptions (entry_id, lot_id, member_id, kind, points, issuing_partner_id,
                                occurred_at)
  SELECT entry_id, id, member_id, 'EXPIRY', remaining, issuing_partner_id,
         CAST(:now AS timestamptz)
  FROM todo
), emptied AS (
  UPDATE lots SET remaining = 0, expired_at = CAST(:now AS timestamptz)
  FROM todo WHERE lots.id = todo.id
), debited AS (
  UPDATE wallets SET balance = balance - t.points
  FROM (SELECT member_id, SUM(remaining) AS points FROM todo GROUP BY member_id) t
  WHERE wallets.member_id = t.member_id
)
SELECT (SELECT count(*) FROM due) AS taken, count(*) AS lots, COALESCE(SUM(remaining), 0) AS points
FROM todo
"""
)


@dataclass(frozen=True)
class BatchResult:
    rows: int  # lots (or holds) handled
    points: int = 0
    skipped: int = 0  # due, but the member's wallet was busy: next round

    @property
    def more(self) -> bool:
        return self.rows > 0


async def activate_due_lots(db: Database, now: datetime, batch: int = DEFAULT_BATCH) -> BatchResult:
    async with transaction(db) as conn:
        status = await ACTIVATE.execute(conn, now=now, batch=batch)
    return BatchResult(rows=int(status.split()[-1]))


async def expire_due_lots(db: Database, now: datetime, batch: int = DEFAULT_BATCH) -> BatchResult:
    async with transaction(db) as conn:
        row = await EXPIRE.fetchrow(conn, now=now, batch=batch)
    assert row is not None
    return BatchResult(rows=row["lots"], points=int(row["points"]), skipped=row["taken"] - row["lots"])
