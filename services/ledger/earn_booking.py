"""The usual earn's one statement (`EARN`, `EARN_EXTENDING`) and the terms it books (`Earn`), for
`earn` (a single purchase) and `bulk_earn` (whose set-based statement books the same rows).

The statement locks the wallet, claims the order id with the purchase row, hangs the entry,
postings, lot and wallet update off it, stores the answer under the idempotency key (when asked
to), and writes the earn's points.earned event into the outbox (docs/events.md), its
`transactionId` built in SQL from the entry id the statement itself draws. A taken order id gives
no purchase row, and so nothing else: no entry, lot, answer or event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.ledger import events
from shared.ids import global_id_sql
from shared.money import Money
from shared.outbox import encode
from shared.sql import DbConnection, Sql

EARN_TEMPLATE = """
WITH w AS (
  SELECT account_id, debt FROM wallets
  WHERE member_id = CAST(:m AS bigint) AND (debt = 0 OR CAST(:allow_debt AS boolean))
    -- an erased member earns nothing, even through a cached lookup not yet forgotten
    AND NOT EXISTS (SELECT 1 FROM members WHERE id = CAST(:m AS bigint) AND erased_at IS NOT NULL)
  FOR UPDATE
), ids AS (
  SELECT nextval(pg_get_serial_sequence('journal_entries', 'id')) AS entry_id,
         CASE WHEN CAST(:points AS bigint) > 0
              THEN nextval(pg_get_serial_sequence('lots', 'id')) END AS lot_id
  FROM w
), pur AS (
  INSERT INTO purchases (partner_id, order_id, member_id, amount, currency, points_earned,
                         entry_id, lot_id, occurred_at, earn_detail)
  SELECT CAST(:p AS bigint), CAST(:order_id AS text), CAST(:m AS bigint), CAST(:amount AS numeric),
         CAST(:currency AS text), CAST(:points AS bigint), entry_id, lot_id,
         CAST(:occurred AS timestamptz), CAST(:detail AS jsonb)
  FROM ids
  ON CONFLICT (partner_id, order_id) DO NOTHING
  RETURNING entry_id, lot_id
), e AS (
  INSERT INTO journal_entries (id, kind, member_id, partner_id, points, order_id, occurred_at)
  SELECT entry_id, 'EARN', CAST(:m AS bigint), CAST(:p AS bigint), CAST(:points AS bigint),
         CAST(:order_id AS text), CAST(:occurred AS timestamptz)
  FROM pur
), po AS (
  INSERT INTO postings (entry_id, account_id, amount)
  SELECT pur.entry_id, x.account_id, x.amount
  FROM pur, w, LATERAL (VALUES
      ((SELECT id FROM ledger_accounts WHERE kind = 'PARTNER_ISSUANCE'
          AND partner_id = CAST(:p AS bigint) AND member_id IS NULL), -CAST(:points AS bigint)),
      (w.account_id, CAST(:points AS bigint))
  ) AS x(account_id, amount)
  WHERE CAST(:points AS bigint) > 0
), l AS (
  INSERT INTO lots (id, member_id, issuing_partner_id, earn_entry_id, points, remaining,
                    earned_at, available_at, expires_at, activated_at)
  SELECT lot_id, CAST(:m AS bigint), CAST(:p AS bigint), entry_id, CAST(:points AS bigint),
         CAST(:points AS bigint), CAST(:occurred AS timestamptz), CAST(:available AS timestamptz),
         CAST(:expires AS timestamptz),
         CASE WHEN CAST(:available AS timestamptz) <= CAST(:now AS timestamptz)
              THEN CAST(:now AS timestamptz) END
  FROM pur WHERE lot_id IS NOT NULL
), wu AS (
  UPDATE wallets SET balance = balance + CAST(:points AS bigint)
  WHERE member_id = CAST(:m AS bigint) AND EXISTS (SELECT 1 FROM pur)
{extend}), claim AS (
  INSERT INTO idempotency_keys (client_id, key, operation, request_hash, response)
  SELECT CAST(:client AS text), CAST(:key AS text), CAST(:operation AS text), CAST(:hash AS text),
         jsonb_build_object('ok', jsonb_build_object(
           'transaction_id', pur.entry_id, 'points', CAST(:points AS bigint),
           'partner_id', CAST(:p AS bigint), 'occurred_at', CAST(:occurred_text AS text),
           'available_at', CAST(:available_text AS text), 'detail', CAST(:detail AS jsonb)))
  FROM pur WHERE CAST(:claim AS boolean)
), ev AS (  -- points.earned, in the statement that books the points (shared/outbox.py)
  INSERT INTO outbox_events (event_id, type, version, occurred_at, member_id, partner_ids, data)
  SELECT CAST(:event_id AS uuid), 'points.earned', 1, CAST(:now AS timestamptz), CAST(:m AS bigint),
         ARRAY[CAST(:p AS bigint)],
         CAST(:event AS jsonb) || jsonb_build_object('transactionId', {transaction_gid})
  FROM pur WHERE CAST(:points AS bigint) > 0
)
SELECT pur.entry_id, pur.lot_id, (SELECT debt FROM w) AS debt FROM pur
"""

# Under ACTIVITY_EXTENDS the member's other live lots move out too. It is a variant of the
# statement rather than a condition on a parameter: a prepared statement's generic plan would scan
# the member's lots on every earn even with the policy off.
EXTEND = """
), ext AS (  -- ACTIVITY_EXTENDS: the member's other live lots move out to now + N months
  UPDATE lots SET expires_at = CAST(:extend_until AS timestamptz)
  WHERE member_id = CAST(:m AS bigint) AND CAST(:extend_until AS timestamptz) IS NOT NULL
    AND remaining > 0 AND expired_at IS NULL AND expires_at > CAST(:now AS timestamptz)
    AND expires_at < CAST(:extend_until AS timestamptz) AND EXISTS (SELECT 1 FROM pur)
"""
EARN_TEMPLATE = EARN_TEMPLATE.replace("{transaction_gid}", global_id_sql("Transaction", "pur.entry_id"))
EARN = Sql(EARN_TEMPLATE.replace("{extend}", ""))
EARN_EXTENDING = Sql(EARN_TEMPLATE.replace("{extend}", EXTEND.strip() + "\n"))


@dataclass(frozen=True)
class Earn:
    """One purchase's terms, decided before any write."""

    partner_id: int
    member_id: int
    order_id: str
    amount: Money
    points: int
    occurred_at: datetime
    available_at: datetime
    expires_at: datetime
    recorded_at: datetime
    extend_until: datetime | None = None
    detail: str | None = None  # the caller's document (JSON text), stored as it is
    member_number: str = ""  # for the points.earned event
    coalition_points: int = 0  # of `points`, issued by the coalition (the event says so)

    def event_data(self, entry_id: int | None = None) -> dict[str, Any]:
        """points.earned's payload (`transactionId` left to the statement when `entry_id` is None)."""
        return events.points_earned(
            member_number=self.member_number,
            partner_id=self.partner_id,
            entry_id=entry_id,
            points=self.points,
            status=events.earn_status(self.available_at, self.recorded_at),
            order_id=self.order_id,
            coalition_points=self.coalition_points,
        )

    def params(self) -> dict[str, Any]:
        return {
            "event_id": uuid.uuid4(),
            "event": encode(self.event_data()),
            "p": self.partner_id,
            "m": self.member_id,
            "order_id": self.order_id,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "points": self.points,
            "occurred": self.occurred_at,
            "available": self.available_at,
            "expires": self.expires_at,
            "now": self.recorded_at,
            "extend_until": self.extend_until,
            "occurred_text": self.occurred_at.isoformat(),
            "available_text": self.available_at.isoformat(),
            "detail": self.detail,
        }

    def answer(self, entry_id: int) -> dict[str, Any]:
        """What the general path stores; the statement builds the same object in SQL."""
        return {
            "transaction_id": entry_id,
            "points": self.points,
            "partner_id": self.partner_id,
            "occurred_at": self.occurred_at.isoformat(),
            "available_at": self.available_at.isoformat(),
            "detail": json.loads(self.detail) if self.detail is not None else None,
        }


@dataclass(frozen=True)
class EarnDecision:
    """What the caller decided a purchase earns, and the document stored with it."""

    points: int
    detail: str | None = None  # JSON text; None for a plain purchase (nothing to explain)
    coalition_points: int = 0  # of `points`, issued by the coalition (coalition promotions)


# Decides the points inside the earn's transaction, after the member's wallet is locked.
Decide = Callable[[DbConnection, int], Awaitable[EarnDecision]]
