"""Outbox events to member notifications: which event owes which member which mail.

The consumer takes the events no mail consumer has taken yet (`mail_dispatched_at IS NULL`), in
id order, a batch at a time with `FOR UPDATE SKIP LOCKED` (any number of workers, none waiting on
another), and in that one transaction records a `member_notifications` row for each event that
owes a mail and marks every event of the batch taken. So:
- an event is decided exactly once: the mark and the rows commit together, and `event_id` is
  unique on the notifications, so even a replayed event could not record a second row;
- a worker killed mid-batch leaves the batch untaken, for the next worker;
- nothing is sent here: `delivery.py` sends from the recorded rows after this commits.

Mails owed: TIER_UP for `tier.changed` going UP, REWARD_VOUCHER for `reward.redeemed` with a
voucher code, TRANSFER_RECEIVED for `points.transferred` (to the receiver, the event's member).
A member who opted out of the kind, has no email or is erased gets a SKIPPED row (the record of
why no mail went); an event about no known member records nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.members.mail_preferences import MailRecipient, MailTopic, recipients
from services.notifications.models import NotificationKind, NotificationStatus, SkipReason
from shared.database import Database
from shared.outbox import EventType, encode
from shared.sql import DbConnection, Sql, transaction

log = logging.getLogger("coalition.notifications")

TOPIC: dict[NotificationKind, MailTopic] = {
    NotificationKind.TIER_UP: MailTopic.TIER_CHANGES,
    NotificationKind.REWARD_VOUCHER: MailTopic.REWARD_VOUCHERS,
    NotificationKind.TRANSFER_RECEIVED: MailTopic.TRANSFERS_RECEIVED,
    NotificationKind.POINTS_EXPIRING: MailTopic.EXPIRING_POINTS,
}

TAKE = Sql(
    "SELECT id, event_id, type, member_id, data FROM outbox_events WHERE mail_dispatched_at IS NULL"
    " ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED"
)
MARK_TAKEN = Sql("UPDATE outbox_events SET mail_dispatched_at = :now WHERE id = ANY(CAST(:ids AS bigint[]))")
RECORD = Sql(
    "INSERT INTO member_notifications"
    " (member_id, kind, event_id, expires_on, data, status, skip_reason, next_attempt_at)"
    " SELECT * FROM unnest(CAST(:members AS bigint[]), CAST(:kinds AS text[]), CAST(:events AS uuid[]),"
    " CAST(:days AS date[]), CAST(:data AS jsonb[]), CAST(:statuses AS text[]), CAST(:reasons AS text[]),"
    " CAST(:due AS timestamptz[]))"
    " ON CONFLICT DO NOTHING RETURNING id"
)


@dataclass(frozen=True)
class Decided:
    """One notification to record."""

    member_id: int
    kind: NotificationKind
    data: Mapping[str, Any]
    event_id: Any = None  # uuid.UUID for an event's, None for the expiring-points notice
    expires_on: Any = None  # date, for the expiring-points notice


def mail_owed(event_type: str, data: Mapping[str, Any]) -> NotificationKind | None:
    """The mail an event owes its member, if any (the event's payload as events_spec says)."""
    if event_type == EventType.TIER_CHANGED:
        return NotificationKind.TIER_UP if data.get("direction") == "UP" and data.get("toTier") else None
    if event_type == EventType.REWARD_REDEEMED:
        return NotificationKind.REWARD_VOUCHER if data.get("voucherCode") else None
    if event_type == EventType.POINTS_TRANSFERRED:
        return NotificationKind.TRANSFER_RECEIVED if data.get("points") else None
    return None


def status_for(recipient: MailRecipient | None, kind: NotificationKind) -> tuple[str, str | None]:
    """PENDING, or SKIPPED with why: erased (no email any more, and erased), no email, opted out."""
    if recipient is None or recipient.email is None:
        erased = recipient is not None and recipient.erased
        return NotificationStatus.SKIPPED, SkipReason.ERASED if erased else SkipReason.NO_EMAIL
    if TOPIC[kind] not in recipient.opted_in:
        return NotificationStatus.SKIPPED, SkipReason.OPTED_OUT
    return NotificationStatus.PENDING, None


async def record(conn: DbConnection, decided: list[Decided], now: datetime) -> int:
    """Records the notifications (skipping those already recorded); returns how many are new."""
    if not decided:
        return 0
    found = await recipients(conn, sorted({d.member_id for d in decided}))
    statuses = [status_for(found.get(d.member_id), d.kind) for d in decided]
    rows = await RECORD.fetch(
        conn,
        members=[d.member_id for d in decided],
        kinds=[str(d.kind) for d in decided],
        events=[d.event_id for d in decided],
        days=[d.expires_on for d in decided],
        data=[encode(d.data) for d in decided],
        statuses=[str(s) for s, _ in statuses],
        reasons=[str(r) if r else None for _, r in statuses],
        due=[now] * len(decided),
    )
    return len(rows)


@dataclass(frozen=True)
class DispatchResult:
    events: int
    recorded: int


async def dispatch_events(db: Database, now: datetime, batch: int) -> DispatchResult:
    """One batch of the outbox: decided, recorded and marked taken in one transaction."""
    async with transaction(db) as conn:
        events = await TAKE.fetch(conn, batch=batch)
        if not events:
            return DispatchResult(0, 0)
        owed = await _owed(conn, events)
        recorded = await record(conn, owed, now)
        await MARK_TAKEN.execute(conn, now=now, ids=[e["id"] for e in events])
    return DispatchResult(len(events), recorded)


async def _owed(conn: DbConnection, events: list[Any]) -> list[Decided]:
    owed = []
    for event in events:
        data = event["data"]
        if isinstance(data, str):  # asyncpg hands jsonb over as text unless a codec is set
            data = json.loads(data)
        if event["member_id"] is None or not isinstance(data, dict):
            continue
        kind = mail_owed(event["type"], data)
        if kind is not None:
            owed.append(Decided(event["member_id"], kind, data, event_id=event["event_id"]))
    return owed
