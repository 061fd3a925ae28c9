"""Sending the recorded member notifications, after the transaction that decided them committed.

A batch of due PENDING rows is claimed in one short transaction: `FOR UPDATE SKIP LOCKED`, the
attempt counted, and `next_attempt_at` pushed a lease ahead, so another worker leaves them alone
while this one sends (no transaction stays open across SMTP). Each mail is rendered then — in the
member's language and to their email as they are at that moment: a member erased since gets none
(SKIPPED, ERASED), one who opted out since gets none — sent, and its row marked SENT. A refused
send is tried again with exponential backoff (1 minute, doubling, at most 6 hours apart), and
after MAX_ATTEMPTS the row is FAILED.

Delivery is at-least-once: a worker killed after the SMTP server accepted a mail and before the
row says SENT sends it again once the lease runs out. It is never lost (the row stays PENDING
until SENT), and never sent twice otherwise (a row is claimed by one worker at a time).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asyncpg import Record

from services.members.mail_preferences import MailRecipient, recipients
from services.notifications.dispatch import status_for
from services.notifications.models import NotificationKind, NotificationStatus
from services.notifications.render import render
from shared import mail
from shared.database import Database
from shared.sql import Sql, connection, transaction

log = logging.getLogger("coalition.notifications")

SEND_BATCH = 20  # mails a worker claims at once: 20 times the SMTP timeout stays inside the lease
LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)

CLAIM = Sql(
    """
WITH due AS (
  SELECT id FROM member_notifications
  WHERE status = 'PENDING' AND next_attempt_at <= :now
  ORDER BY next_attempt_at, id LIMIT :batch FOR UPDATE SKIP LOCKED
)
UPDATE member_notifications n SET attempts = n.attempts + 1, next_attempt_at = :lease_until
FROM due WHERE n.id = due.id
RETURNING n.id, n.member_id, n.kind, n.data, n.attempts
"""
)
SETTLE = Sql(
    "UPDATE member_notifications SET status = :status, skip_reason = :reason, sent_at = :sent,"
    " next_attempt_at = COALESCE(CAST(:next AS timestamptz), next_attempt_at), last_error = :error"
    " WHERE id = :id AND status = 'PENDING'"
)


def retry_delay(attempts: int) -> timedelta:
    """After the `attempts`-th refused try: 1, 2, 4 … minutes, never more than 6 hours."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)


@dataclass(frozen=True)
class DeliveryResult:
    sent: int
    failed: int  # refused this time (retried later, or FAILED for good)
    skipped: int

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.skipped


async def deliver_due(db: Database, now: datetime, batch: int = SEND_BATCH) -> DeliveryResult:
    """Claims a batch of due notifications and sends them; returns what became of them."""
    async with transaction(db) as conn:
        claimed = await CLAIM.fetch(conn, now=now, batch=min(batch, SEND_BATCH), lease_until=now + LEASE)
    if not claimed:
        return DeliveryResult(0, 0, 0)
    async with connection(db) as conn:
        found = await recipients(conn, sorted({r["member_id"] for r in claimed}))
    sent = failed = skipped = 0
    for row in claimed:
        outcome = await _send_one(row, found.get(row["member_id"]), now)
        # Each row as soon as its mail went: a crash re-sends at most the mail in flight.
        async with connection(db) as conn:
            await SETTLE.execute(conn, id=row["id"], **outcome)
        if outcome["status"] == NotificationStatus.SENT:
            sent += 1
        elif outcome["status"] == NotificationStatus.SKIPPED:
            skipped += 1
        else:
            failed += 1
    return DeliveryResult(sent, failed, skipped)


async def _send_one(row: Record, recipient: MailRecipient | None, now: datetime) -> dict[str, Any]:
    """Sends one claimed notification; returns the row's new state (SETTLE's parameters)."""
    kind = NotificationKind(row["kind"])
    outcome: dict[str, Any] = {"status": None, "reason": None, "sent": None, "next": None, "error": None}
    status, reason = status_for(recipient, kind)
    if status is NotificationStatus.SKIPPED or recipient is None or recipient.email is None:
        return {**outcome, "status": NotificationStatus.SKIPPED, "reason": reason}
    data = json.loads(row["data"]) if isinstance(row["data"], str) else row["data"]
    try:
        message = render(
            kind, data, to=recipient.email, member_number=recipient.member_number, tag=recipient.language
        )
    except (KeyError, ValueError, TypeError) as exc:  # a malformed event: no retry mends it
        log.error("notification %s cannot be rendered: %r", row["id"], exc)
        return {**outcome, "status": NotificationStatus.FAILED, "error": f"cannot render: {exc!r}"}
    try:
        await mail.send(message)
    except mail.MailError as exc:
        if row["attempts"] >= MAX_ATTEMPTS:
            log.error("notification %s not sent after %d attempts: %s", row["id"], row["attempts"], exc)
            return {**outcome, "status": NotificationStatus.FAILED, "error": str(exc)}
        log.warning("notification %s not sent (attempt %d): %s", row["id"], row["attempts"], exc)
        retry_at = now + retry_delay(row["attempts"])
        return {**outcome, "status": NotificationStatus.PENDING, "next": retry_at, "error": str(exc)}
    return {**outcome, "status": NotificationStatus.SENT, "sent": now}
