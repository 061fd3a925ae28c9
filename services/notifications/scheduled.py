"""The notifications' scheduled jobs (run by `coalition worker`, after the ledger's): partners'
webhooks and member mail.

In the order a round runs them:
1. `webhook-events`: outbox events to webhook deliveries (`webhook_fanout.py`);
2. `webhook-send`: the due deliveries POSTed, signed, with retries (`webhook_sender.py`);
3. `mail-events`: outbox events to member notifications (`dispatch.py`), a batch per transaction;
4. `mail-expiring`: the expiring-points scan (`expiring.py`), at most once an hour across workers;
5. `mail-send`: the due notifications sent over SMTP, with retries (`delivery.py`).
Deciding and sending are apart on purpose: a delivery or notification is recorded in the
transaction that takes its event, and sent after that committed, so a crash loses none
(at-least-once sending).
"""

from __future__ import annotations

from datetime import datetime

from services.ledger.scheduled import BatchResult, ScheduledJob, counted
from services.notifications import delivery, dispatch, expiring, webhook_fanout, webhook_sender
from shared.database import Database


async def fan_out_webhook_events(db: Database, now: datetime, batch: int) -> BatchResult:
    done = await webhook_fanout.fan_out(db, now, batch)
    return BatchResult(rows=done.events, points=done.deliveries)


async def send_webhooks(db: Database, now: datetime, batch: int) -> BatchResult:
    done = await webhook_sender.send_due(db, now, batch)
    return BatchResult(rows=done.handled, points=done.succeeded, skipped=0)


async def dispatch_mail_events(db: Database, now: datetime, batch: int) -> BatchResult:
    done = await dispatch.dispatch_events(db, now, batch)
    return BatchResult(rows=done.events, points=done.recorded)


async def scan_expiring_points(db: Database, now: datetime, batch: int) -> BatchResult:
    """The whole scan when this worker claims it (once per SCAN_INTERVAL); else nothing."""
    if not await expiring.claim_scan(db, now):
        return BatchResult(rows=0)
    return BatchResult(rows=await expiring.scan(db, now, batch))


async def send_member_mail(db: Database, now: datetime, batch: int) -> BatchResult:
    done = await delivery.deliver_due(db, now, batch)
    return BatchResult(rows=done.handled, points=done.sent)


def _fanned_out(r: BatchResult) -> str:
    owed = f"{r.points:,} {'delivery' if r.points == 1 else 'deliveries'}"
    return f"took {counted(r.rows, 'event')} for webhooks ({owed})"


def _posted(r: BatchResult) -> str:
    return f"delivered {counted(r.points, 'webhook')} of {r.rows:,} due"


def _dispatched(r: BatchResult) -> str:
    return f"took {counted(r.rows, 'event')} for member mail ({counted(r.points, 'notification')})"


def _scanned(r: BatchResult) -> str:
    return f"recorded {counted(r.rows, 'expiring-points notice')}"


def _sent(r: BatchResult) -> str:
    return f"sent {counted(r.points, 'member mail')} of {r.rows:,} due"


JOBS: list[ScheduledJob] = [
    ScheduledJob("webhook-events", "events", fan_out_webhook_events, _fanned_out, on_events=True),
    ScheduledJob("webhook-send", "deliveries", send_webhooks, _posted, on_events=True),
    ScheduledJob("mail-events", "events", dispatch_mail_events, _dispatched, on_events=True),
    ScheduledJob("mail-expiring", "notices", scan_expiring_points, _scanned),
    ScheduledJob("mail-send", "mails", send_member_mail, _sent, on_events=True),
]
