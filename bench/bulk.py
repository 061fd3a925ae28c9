"""A bulk loader for benchmarks: exactly the rows an earn writes, a million at a time.

Partners and members are made through the services; the earns themselves are written set-based
(purchase, EARN entry, two postings, lot, wallet balance), the same rows `services.ledger.earn`
writes one by one, so `coalition audit` holds afterwards. Benchmarks only: never for real data.
"""

from __future__ import annotations

from datetime import datetime

from shared.database import Database
from shared.sql import Sql, transaction

LOAD = Sql(
    """
WITH m AS (
  SELECT w.member_id, w.account_id, row_number() OVER (ORDER BY w.member_id) - 1 AS n
  FROM wallets w WHERE w.member_id = ANY(CAST(:members AS bigint[]))
), src AS (
  SELECT m.member_id, m.account_id, g AS k,
         nextval(pg_get_serial_sequence('journal_entries', 'id')) AS entry_id,
         nextval(pg_get_serial_sequence('lots', 'id')) AS lot_id
  FROM m, generate_series(1, CAST(:per_member AS int)) g
), pur AS (
  INSERT INTO purchases (partner_id, order_id, member_id, amount, currency, points_earned,
                         entry_id, lot_id, occurred_at)
  SELECT CAST(:p AS bigint), 'bulk-' || CAST(:tag AS text) || '-' || entry_id, member_id,
         CAST(:points AS bigint), 'EUR', CAST(:points AS bigint), entry_id,
         lot_id, CAST(:earned AS timestamptz) FROM src
), e AS (
  INSERT INTO journal_entries (id, kind, member_id, partner_id, points, order_id, occurred_at)
  SELECT entry_id, 'EARN', member_id, CAST(:p AS bigint), CAST(:points AS bigint),
         'bulk-' || CAST(:tag AS text) || '-' || entry_id,
         CAST(:earned AS timestamptz) FROM src
), po AS (
  INSERT INTO postings (entry_id, account_id, amount)
  SELECT entry_id, account_id, CAST(:points AS bigint) FROM src
  UNION ALL
  SELECT entry_id, (SELECT id FROM ledger_accounts WHERE kind = 'PARTNER_ISSUANCE'
                    AND partner_id = CAST(:p AS bigint) AND member_id IS NULL),
         -CAST(:points AS bigint) FROM src
), l AS (
  INSERT INTO lots (id, member_id, issuing_partner_id, earn_entry_id, points, remaining,
                    earned_at, available_at, expires_at)
  SELECT lot_id, member_id, CAST(:p AS bigint), entry_id, CAST(:points AS bigint),
         CAST(:points AS bigint), CAST(:earned AS timestamptz),
         CAST(:available AS timestamptz), CAST(:expires AS timestamptz) FROM src
)
UPDATE wallets SET balance = balance + CAST(:per_member AS bigint) * CAST(:points AS bigint)
WHERE member_id = ANY(CAST(:members AS bigint[]))
"""
)


async def load_lots(
    db: Database,
    *,
    partner_id: int,
    member_ids: list[int],
    per_member: int,
    points: int,
    earned_at: datetime,
    available_at: datetime,
    expires_at: datetime,
    tag: str,
) -> None:
    async with transaction(db) as conn:
        await LOAD.execute(
            conn,
            members=member_ids,
            per_member=per_member,
            p=partner_id,
            points=points,
            tag=tag,
            earned=earned_at,
            available=available_at,
            expires=expires_at,
        )
