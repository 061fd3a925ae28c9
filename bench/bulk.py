"""A bulk loader for benchmarks: exactly the rows an earn writes, a million at a time.

Partners and members are made through the services; the earns themselves are written set-based
(purchase, EARN entry, two postings, lot, wallet balance), the same rows `services.ledger.earn`
writes one by one, so `coalition audit` holds afterwards. Benchmarks only: never for real data.
"""

from __future__ import annotations

from datetime import datetime

from services.ledger import accounts
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
        # The ledger opens accounts the first time it books for a partner or member; so does this.
        await accounts.open_partner_accounts(conn, partner_id)
        await accounts.open_wallets(conn, member_ids)
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


REDEEM_ALL = Sql(
    """
WITH src AS (
  SELECT l.id AS lot_id, l.member_id, l.issuing_partner_id, w.account_id AS wallet,
         p.partner_id AS redeemer, l.remaining AS take,
         nextval(pg_get_serial_sequence('journal_entries', 'id')) AS entry_id
  FROM lots l
  JOIN wallets w ON w.member_id = l.member_id
  JOIN LATERAL (
    SELECT partner_id FROM unnest(CAST(:partners AS bigint[])) WITH ORDINALITY AS x(partner_id, n)
    WHERE n = 1 + (l.id % cardinality(CAST(:partners AS bigint[])))
  ) p ON true
  WHERE l.member_id = ANY(CAST(:members AS bigint[])) AND l.remaining > 0
), priced AS (
  SELECT src.*, pc.redeem_price, ra.id AS redemption_account FROM src
  JOIN LATERAL (SELECT redeem_price FROM partner_contracts WHERE partner_id = src.redeemer
                ORDER BY effective_from DESC LIMIT 1) pc ON true
  JOIN ledger_accounts ra ON ra.kind = 'PARTNER_REDEMPTION' AND ra.partner_id = src.redeemer
                         AND ra.member_id IS NULL
), e AS (
  INSERT INTO journal_entries (id, kind, member_id, partner_id, points, order_id, occurred_at)
  SELECT entry_id, 'REDEEM', member_id, redeemer, -take, 'bulk-r-' || entry_id,
         CAST(:at AS timestamptz) FROM priced
), po AS (
  INSERT INTO postings (entry_id, account_id, amount)
  SELECT entry_id, wallet, -take FROM priced
  UNION ALL
  SELECT entry_id, redemption_account, take FROM priced
), c AS (
  INSERT INTO lot_consumptions (entry_id, lot_id, member_id, kind, points, issuing_partner_id,
                                counterparty_partner_id, occurred_at)
  SELECT entry_id, lot_id, member_id, 'REDEMPTION', take, issuing_partner_id, redeemer,
         CAST(:at AS timestamptz) FROM priced
), r AS (
  INSERT INTO redemptions (partner_id, order_id, member_id, points, value_amount, currency,
                           redeem_price, entry_id, occurred_at)
  SELECT redeemer, 'bulk-r-' || entry_id, member_id, take, round(take * redeem_price, 2), 'EUR',
         redeem_price, entry_id, CAST(:at AS timestamptz) FROM priced
), lu AS (
  UPDATE lots SET remaining = 0 FROM priced WHERE lots.id = priced.lot_id
)
UPDATE wallets SET balance = balance - t.points
FROM (SELECT member_id, SUM(take) AS points FROM priced GROUP BY member_id) t
WHERE wallets.member_id = t.member_id
"""
)


async def redeem_all(db: Database, *, member_ids: list[int], partner_ids: list[int], at: datetime) -> None:
    """Spends every point of these members' lots, each lot at one of `partner_ids`: one REDEEM
    entry, two postings, one consumption and one redemption row per lot, as a redemption writes."""
    async with transaction(db) as conn:
        for partner_id in partner_ids:
            await accounts.open_partner_accounts(conn, partner_id)
        await REDEEM_ALL.execute(conn, members=member_ids, partners=partner_ids, at=at)
