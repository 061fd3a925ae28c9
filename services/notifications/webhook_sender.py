"""Sending webhook deliveries: signed POSTs, at least once, in order per member, with retries.

Claiming: a delivery is sendable when it is the head of its queue — the lowest outbox id still
PENDING for its endpoint and ordering key (the member it is about) — its endpoint is ACTIVE and
its `next_attempt_at` has come. A batch of heads is claimed in one short transaction (`FOR UPDATE
SKIP LOCKED`, the attempt counted, `next_attempt_at` pushed a lease ahead), so any number of
workers share the work and no two ever hold one queue: a member's later event waits until the
earlier one SUCCEEDED or is DEAD; a DEAD delivery no longer holds its queue back. (The claim
re-checks `next_attempt_at` on the row it locks, so a delivery another worker claimed a moment ago
is not claimed twice.)

Sending happens outside any transaction, the batch's POSTs concurrently (each to a different
queue), and the batch is settled in one statement once every answer came (or timed out): 2xx is
SUCCEEDED; anything else (an error
status, a timeout, a refused connection) is tried again after a backoff — 10 s doubling up to an
hour, with jitter (each delay drawn between half and all of it, so a receiver coming back is not
hit by every retry at once) — until `retry_until` (24 hours after the event, WEBHOOK_RETRY_HOURS),
then DEAD. Redirects are not followed: a delivery goes where the partner said, or fails.

At least once: a worker killed between a receiver's 2xx and the batch's settle leaves those
deliveries PENDING; the lease ends and it is sent again with the same `Coalition-Event-Id`, which
is what receivers de-duplicate on. A settle that finds its lease taken over by another worker
(the attempt count moved on) changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from asyncpg import Record

from services.notifications import webhook_signing as signing
from shared import clock
from shared.database import Database
from shared.settings import get_settings
from shared.sql import Sql, connection, transaction

log = logging.getLogger("coalition.webhooks")

SEND_BATCH = 100  # deliveries a worker claims at once
CONCURRENCY = 16  # POSTs in flight at once
LEASE = timedelta(minutes=2)  # > SEND_BATCH / CONCURRENCY * the receiver timeout
FIRST_RETRY = timedelta(seconds=10)
LONGEST_RETRY = timedelta(hours=1)
MAX_ERROR = 500
USER_AGENT = "Coalition-Webhooks/1"

CLAIM = Sql(
    """
WITH heads AS (
  SELECT DISTINCT ON (endpoint_id, ordering_key) id, endpoint_id, next_attempt_at
  FROM webhook_deliveries WHERE status = 'PENDING'
  ORDER BY endpoint_id, ordering_key, outbox_id
), due AS (
  SELECT d.id FROM webhook_deliveries d
  JOIN heads h ON h.id = d.id
  JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.status = 'ACTIVE' AND e.deleted_at IS NULL
  WHERE h.next_attempt_at <= :now AND d.status = 'PENDING' AND d.next_attempt_at <= :now
  ORDER BY d.next_attempt_at, d.id LIMIT :batch
  FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = :lease_until
FROM due WHERE d.id = due.id
RETURNING d.id, d.endpoint_id, d.outbox_id, d.attempts, d.retry_until
"""
)
LOAD = Sql(
    """
SELECT d.id, e.url, e.secret_sealed, e.previous_secret_sealed, e.previous_expires_at,
       o.event_id, o.type, o.version, o.occurred_at, o.data
FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id
JOIN outbox_events o ON o.id = d.outbox_id
WHERE d.id = ANY(CAST(:ids AS bigint[]))
"""
)
SETTLE = Sql(
    """
UPDATE webhook_deliveries d SET status = u.status, next_attempt_at = COALESCE(u.next, d.next_attempt_at),
  last_status_code = u.code, last_error = u.error, delivered_at = COALESCE(u.delivered, d.delivered_at)
FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS int[]), CAST(:statuses AS text[]),
  CAST(:nexts AS timestamptz[]), CAST(:codes AS int[]), CAST(:errors AS text[]),
  CAST(:delivered AS timestamptz[])) AS u(id, attempts, status, next, code, error, delivered)
WHERE d.id = u.id AND d.status = 'PENDING' AND d.attempts = u.attempts
"""
)


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """After the `attempts`-th failed try: 10 s, 20 s, 40 s … at most an hour, each drawn between
    half and all of that (jitter)."""
    ceiling = min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)
    return ceiling * (rng or random).uniform(0.5, 1.0)


def body_of(row: Record | dict[str, Any]) -> bytes:
    """The JSON body of an event's delivery: the same bytes every time it is (re)sent."""
    data = row["data"]
    if isinstance(data, str):  # asyncpg hands jsonb over as text unless a codec is set
        data = json.loads(data)
    document = {
        "id": str(row["event_id"]),
        "type": row["type"],
        "version": row["version"],
        "occurredAt": row["occurred_at"].isoformat(),
        "data": data,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def live_secrets(row: Record | dict[str, Any], now: datetime) -> list[str]:
    """The secrets that sign now, newest first: the previous one while its overlap lasts."""
    found = [signing.unseal(row["secret_sealed"])]
    if row["previous_secret_sealed"] and row["previous_expires_at"] and row["previous_expires_at"] > now:
        found.append(signing.unseal(row["previous_secret_sealed"]))
    return found


@dataclass(frozen=True)
class SendResult:
    succeeded: int
    failed: int  # refused this time: retried later, or DEAD
    dead: int

    @property
    def handled(self) -> int:
        return self.succeeded + self.failed


async def send_due(db: Database, now: datetime, batch: int = SEND_BATCH) -> SendResult:
    """Claims a batch of queue heads and sends them; returns what became of them."""
    async with transaction(db) as conn:
        claimed = await CLAIM.fetch(conn, now=now, batch=min(batch, SEND_BATCH), lease_until=now + LEASE)
        if not claimed:
            return SendResult(0, 0, 0)
        loaded = {r["id"]: r for r in await LOAD.fetch(conn, ids=[c["id"] for c in claimed])}
    settings = get_settings()
    gate = asyncio.Semaphore(CONCURRENCY)
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        outcomes = await asyncio.gather(
            *(_send_one(client, gate, c, loaded[c["id"]], now) for c in claimed if c["id"] in loaded)
        )
    async with connection(db) as conn:
        await SETTLE.execute(
            conn,
            ids=[o["id"] for o in outcomes],
            attempts=[o["attempts"] for o in outcomes],
            statuses=[o["status"] for o in outcomes],
            nexts=[o["next"] for o in outcomes],
            codes=[o["code"] for o in outcomes],
            errors=[o["error"] for o in outcomes],
            delivered=[o["delivered"] for o in outcomes],
        )
    succeeded = sum(1 for o in outcomes if o["status"] == "SUCCEEDED")
    dead = sum(1 for o in outcomes if o["status"] == "DEAD")
    return SendResult(succeeded, len(outcomes) - succeeded, dead)


async def _send_one(
    client: httpx.AsyncClient, gate: asyncio.Semaphore, claimed: Record, row: Record, now: datetime
) -> dict[str, Any]:
    """POSTs one claimed delivery; returns its new state (a row of SETTLE's arrays)."""
    body = body_of(row)
    async with gate:
        timestamp = int(clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Coalition-Event-Id": str(row["event_id"]),
            "Coalition-Event-Type": row["type"],
            "Coalition-Delivery-Id": str(claimed["id"]),
            "Coalition-Signature": signing.signature_header(live_secrets(row, now), timestamp, body),
        }
        code: int | None = None
        try:
            response = await client.post(row["url"], content=body, headers=headers)
            code = response.status_code
            error = None if 200 <= code < 300 else f"HTTP {code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR] or type(exc).__name__
    settle: dict[str, Any] = {"id": claimed["id"], "attempts": claimed["attempts"], "code": code}
    if error is None:
        return settle | {"status": "SUCCEEDED", "next": None, "error": None, "delivered": clock.now()}
    retry_at = now + retry_delay(claimed["attempts"])
    status = "DEAD" if retry_at > claimed["retry_until"] else "PENDING"
    log.warning(
        "webhook delivery %s (%s) to endpoint %s failed, attempt %d: %s%s",
        claimed["id"],
        row["type"],
        claimed["endpoint_id"],
        claimed["attempts"],
        error,
        "; dead-lettered" if status == "DEAD" else "",
    )
    return settle | {"status": status, "next": retry_at, "error": error, "delivered": None}
