"""Webhook delivery: events per second one worker delivers to a local receiver, and the lag from
an earn's commit to its delivery.

    .venv/bin/python bench/webhooks.py [--events 3000] [--members 200] [--lag-events 200]

Three measurements in one run, on a scratch database of the server DATABASE_URL points at:
1. baseline: signed POSTs of the same size straight from this process to the same receiver,
   16 in flight (what the worker does at best, with no database at all);
2. throughput: `--events` earns (one `points.earned` each) committed first, then one
   `coalition worker` started; deliveries per second from its first delivery to its last, and
   their ratio to the baseline;
3. lag: with that worker running (its rounds 30 s apart: deliveries follow points moves through
   its LISTEN wake-up), `--lag-events` earns at ~20 a second; each one's time from the earn's
   commit (its call returned) to the receiver getting it, p50 and p99.
The receiver is a Starlette app on uvicorn in this process (tests/notifications/webhook_receiver.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("COALITION_ENV", "development")  # the receiver is on http://127.0.0.1

import httpx

from services.earning import service as earning
from services.notifications import webhook_endpoints as endpoints
from services.notifications import webhook_signing as signing
from shared.database import Database, recreate_database, resolve_database_url
from shared.migrate import upgrade_to_head
from shared.money import Money
from tests.factories import enroll, make_partner
from tests.notifications.webhook_receiver import Receiver, serve_receiver

COALITION = str(Path(sys.executable).parent / "coalition")


async def _baseline(receiver: Receiver, count: int, body: bytes) -> float:
    gate = asyncio.Semaphore(16)
    secret = signing.new_secret()

    async def one(client: httpx.AsyncClient, n: int) -> None:
        async with gate:
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "Coalition-Event-Id": f"baseline-{n}",
                "Coalition-Signature": signing.signature_header([secret], stamp, body),
            }
            response = await client.post(receiver.url, content=body, headers=headers)
            response.raise_for_status()

    async with httpx.AsyncClient() as client:
        start = time.perf_counter()
        await asyncio.gather(*(one(client, n) for n in range(count)))
        elapsed = time.perf_counter() - start
    receiver.received.clear()
    return count / elapsed


async def _earn(db: Database, partner, number: str, order: str) -> None:
    key = uuid.uuid4().hex
    outcome = await earning.record_purchase(
        db, partner.principal, earning.PurchaseInput(key, number, order, Money(Decimal("12.50"), "EUR"))
    )
    assert not outcome.errors, outcome.errors


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--lag-events", type=int, default=200)
    args = parser.parse_args()
    url = await recreate_database(resolve_database_url(), "coalition_bench_webhooks")
    await upgrade_to_head(url)
    db = Database(url, pool_size=10)
    partner = await make_partner(db)
    numbers = [(await enroll(db, partner)).member_number for _ in range(args.members)]
    async with serve_receiver() as receiver:
        sample = b'{"data":{"memberNumber":"100000000000","points":12,"status":"AVAILABLE"},"id":"x"}' * 3
        baseline = await _baseline(receiver, args.events, sample)
        await endpoints.create_endpoint(
            db, partner.principal, url=receiver.url, event_types=["points.earned"]
        )
        receiver.received.clear()  # enrolments wrote no points.earned, but be sure
        gate = asyncio.Semaphore(8)

        async def earn_one(n: int) -> None:
            async with gate:
                await _earn(db, partner, numbers[n % len(numbers)], f"bulk-{n}")

        await asyncio.gather(*(earn_one(n) for n in range(args.events)))
        env = {**os.environ, "DATABASE_URL": url}
        worker = await asyncio.create_subprocess_exec(
            COALITION, "worker", "--interval", "30", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            async with asyncio.timeout(600):
                await receiver.wait_for(args.events)
            span = receiver.received[-1].at - receiver.received[0].at
            rate = (args.events - 1) / span if span > 0 else float("inf")

            sent_at: dict[str, float] = {}
            for n in range(args.lag_events):
                order = f"lag-{n}"
                await _earn(db, partner, numbers[n % len(numbers)], order)
                sent_at[order] = time.perf_counter()
                await asyncio.sleep(0.05)
            async with asyncio.timeout(120):
                await receiver.wait_for(args.events + args.lag_events)
        finally:
            worker.terminate()
            await worker.wait()
        landed = {
            r.json["data"]["orderId"]: r.at
            for r in receiver.received
            if (r.json["data"].get("orderId") or "").startswith("lag-")
        }
        lags = sorted((landed[o] - sent_at[o]) * 1000 for o in sent_at)
    await db.dispose()
    p99 = lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))]
    print(f"baseline: {baseline:,.0f} signed POSTs/s straight to the receiver (16 in flight)")
    print(
        f"worker:   {rate:,.0f} deliveries/s over {args.events:,} events ({rate / baseline:.2f} of baseline)"
    )
    print(f"lag:      p50 {statistics.median(lags):.0f} ms, p99 {p99:.0f} ms from commit to delivery"
          f" ({len(lags)} earns at ~20/s)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
