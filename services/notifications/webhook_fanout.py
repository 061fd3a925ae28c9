"""Outbox events to webhook deliveries: which endpoint is owed which event.

One worker at a time fans out (a transaction-scoped advisory lock; another worker finds it taken
and moves on to sending), a batch of events in outbox order per transaction: for each event, a
delivery to every endpoint that is ACTIVE, subscribes to its type and may hear it (a partner's
endpoint when the partner is in the event's `partner_ids`, the coalition's own endpoints always),
then the batch is marked taken (`webhooks_dispatched_at`), in the same transaction. So an event is
fanned out exactly once (the mark and the deliveries commit together; `(endpoint, event)` is
unique besides), a worker killed mid-batch leaves the batch to the next, and nothing is sent
here: `webhook_sender.py` sends what this committed.

One fan-out at a time is what keeps each member's deliveries in outbox order: two workers
fanning out neighbouring batches at once could commit a member's later event first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.database import Database
from shared.settings import get_settings
from shared.sql import Sql, transaction

FANOUT_LOCK = 7_400_000_001  # pg_advisory_xact_lock key: one fan-out at a time, coalition-wide

LOCK = Sql("SELECT pg_try_advisory_xact_lock(:key)")
TAKE = Sql("SELECT id FROM outbox_events WHERE webhooks_dispatched_at IS NULL ORDER BY id LIMIT :batch")
OWE = Sql(
    """
INSERT INTO webhook_deliveries
  (endpoint_id, outbox_id, event_id, event_type, ordering_key, next_attempt_at, retry_until)
SELECT e.id, o.id, o.event_id, o.type, COALESCE(o.member_id, -o.id), :now, :until
FROM outbox_events o
JOIN webhook_endpoints e ON e.deleted_at IS NULL AND e.status = 'ACTIVE'
  AND o.type = ANY(e.event_types) AND (e.partner_id IS NULL OR e.partner_id = ANY(o.partner_ids))
WHERE o.id = ANY(CAST(:ids AS bigint[]))
ORDER BY o.id, e.id
ON CONFLICT (endpoint_id, event_id) DO NOTHING
"""
)
MARK_TAKEN = Sql(
    "UPDATE outbox_events SET webhooks_dispatched_at = :now WHERE id = ANY(CAST(:ids AS bigint[]))"
)


@dataclass(frozen=True)
class FanoutResult:
    events: int  # taken from the outbox
    deliveries: int  # owed to endpoints
    busy: bool = False  # another worker holds the fan-out


async def fan_out(db: Database, now: datetime, batch: int) -> FanoutResult:
    """One batch of the outbox, fanned out and marked taken in one transaction."""
    until = now + timedelta(hours=get_settings().webhook_retry_hours)
    async with transaction(db) as conn:
        if not await LOCK.fetchval(conn, key=FANOUT_LOCK):
            return FanoutResult(0, 0, busy=True)
        ids = [r["id"] for r in await TAKE.fetch(conn, batch=batch)]
        if not ids:
            return FanoutResult(0, 0)
        owed = await OWE.execute(conn, ids=ids, now=now, until=until)
        await MARK_TAKEN.execute(conn, ids=ids, now=now)
    return FanoutResult(len(ids), _count(owed))


def _count(status: object) -> int:
    """Rows an INSERT wrote, from asyncpg's status string ("INSERT 0 12")."""
    text = str(status or "")
    return int(text.rsplit(" ", 1)[-1]) if text[-1:].isdigit() else 0
