"""Earn throughput: `recordPurchase` over HTTP with real tokens, for a flat partner (no rules: the
base rate, one line) and for a partner with 20 earn rules and 3 promotions, one live (purchases of 3
lines), vs the same SQL
through raw asyncpg.

    .venv/bin/python bench/earn.py [--concurrency 32] [--seconds 15] [--workers 2]

All runs happen in this one invocation, against a fresh database on the same server, so the
ratios rules/flat and GraphQL/raw are what the rules and the gateway cost on this machine today.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loadclient import Connection
from bench.served import partner_token, served
from services.earning import service as earning
from services.ledger.earn import EARN, OPERATION, Earn
from shared import clock
from shared.database import Database, _asyncpg_dsn, recreate_database, resolve_database_url
from shared.migrate import upgrade_to_head
from shared.money import Money
from tests.factories import SeededPartner, enroll, make_partner

MUTATION = (
    "mutation($input: RecordPurchaseInput!) { recordPurchase(input: $input) "
    "{ transaction { id points status } pointsEarned userErrors { code field message } } }"
)


def _report(name: str, latencies: list[float], elapsed: float) -> float:
    rate = len(latencies) / elapsed
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    print(
        f"{name:<11} {len(latencies):>7} earns in {elapsed:5.1f}s  {rate:8.0f} earns/s"
        f"  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
    )
    return rate


LINES = [
    {"sku": "latte", "category": "coffee", "quantity": 2, "amount": {"amount": "7.00", "currency": "EUR"}},
    {"sku": "bun", "category": "bakery", "quantity": 1, "amount": {"amount": "2.90", "currency": "EUR"}},
    {"sku": "card", "category": "giftcard", "quantity": 1, "amount": {"amount": "3.00", "currency": "EUR"}},
]


async def _twenty_rules(db: Database, partner: SeededPartner) -> None:
    """17 SKU and category rules (3 of them match the bench's lines), a minimum spend, a cap per
    purchase and an exclusion: 20 rules in force, none per member (those take the locked path)."""
    terms: list[dict[str, Any]] = [
        {"name": f"sku {i}", "sku": f"sku-{i}", "multiplier": Decimal("1.5")} for i in range(14)
    ]
    terms += [
        {"name": "coffee x2", "category": "coffee", "multiplier": Decimal(2)},
        {"name": "3 per bun", "sku": "bun", "points_per_unit": Decimal(3)},
        {"name": "tea x2", "category": "tea", "multiplier": Decimal(2)},
        {"name": "no gift cards", "category": "giftcard", "multiplier": Decimal(0)},
        {"name": "min 1", "min_spend": Decimal(1)},
        {"name": "cap 500", "cap_per_purchase": 500},
    ]
    for t in terms:
        await earning.create_rule(db, partner.principal, partner_id=None, terms=t)


async def _three_promotions(db: Database, partner: SeededPartner) -> None:
    """Three promotions, one live (coffee x1.5, no budget: the one-statement path), one over, one
    not yet started: what the engine checks on every purchase."""
    now = datetime.now(UTC)
    for terms in (
        earning.PromotionTerms(name="coffee x1.5", multiplier=Decimal("1.5"), categories=("coffee",)),
        earning.PromotionTerms(
            name="last week",
            bonus_points=50,
            starts_at=now - timedelta(days=14),
            ends_at=now - timedelta(days=7),
        ),
        earning.PromotionTerms(
            name="next month", percent_of_amount=Decimal(5), starts_at=now + timedelta(days=30)
        ),
    ):
        await earning.create_promotion(db, partner.principal, partner_id=None, terms=terms)


async def _graphql_run(
    base: str, token: str, numbers: list[str], concurrency: int, seconds: float, *, lines: bool = False
) -> tuple[list[float], float]:
    run = uuid.uuid4().hex[:6]  # keys and order ids of their own, whatever ran before
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    errors = 0

    async def worker(index: int) -> None:
        nonlocal errors
        conn = Connection(host, int(port), f"Bearer {token}")
        await conn.open()
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            body = json.dumps(
                {
                    "query": MUTATION,
                    "variables": {
                        "input": {
                            "idempotencyKey": f"g-{run}-{index}-{n}",
                            "memberNumber": numbers[(index + n) % len(numbers)],
                            "orderId": f"g-{run}-{index}-{n}",
                            "amount": {"amount": "12.90", "currency": "EUR"},
                            **({"lines": LINES} if lines else {}),
                        }
                    },
                }
            ).encode()
            started = time.perf_counter()
            status, payload = await conn.post(body)
            latencies.append(time.perf_counter() - started)
            if status != 200 or b'"userErrors":[]' not in payload:
                errors += 1
                if errors < 3:
                    print("error:", status, payload[:300])
        await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    if errors:
        print(f"graphql: {errors} failed requests")
    return latencies, time.perf_counter() - started


async def _raw_run(
    url: str,
    partner_id: int,
    client_id: str,
    member_ids: list[tuple[int, str]],
    concurrency: int,
    seconds: float,
) -> tuple[list[float], float]:
    """What the gateway sends per earn in steady state, on plain asyncpg: the earn statement
    (wallet lock, purchase, entry, postings, lot, wallet and idempotency key in one), autocommit.
    The partner's terms and the member's enrolment are cached by then, as in the gateway."""
    dsn, kwargs = _asyncpg_dsn(url)
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency, **kwargs)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    now = clock.now()

    async def worker(index: int) -> None:
        n = 0
        async with pool.acquire() as conn:
            while time.perf_counter() < deadline:
                n += 1
                member_id = member_ids[(index + n) % len(member_ids)]
                earn = Earn(
                    partner_id=partner_id,
                    member_id=member_id,
                    order_id=f"r-{index}-{n}",
                    amount=Money(Decimal("12.90"), "EUR"),
                    points=12,
                    occurred_at=now,
                    available_at=now,
                    expires_at=clock.add_months(now, 24),
                    recorded_at=now,
                )
                started = time.perf_counter()
                await EARN.fetchrow(
                    conn,
                    **earn.params(),
                    client=client_id,
                    key=f"r-{index}-{n}",
                    operation=OPERATION,
                    hash="h",
                    claim=True,
                    allow_debt=False,
                )
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return latencies, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument(
        "--tiers", action="store_true", help="a base tier (x1.25) and Gold: every earn takes the tier path"
    )
    args = parser.parse_args()

    url = await recreate_database(resolve_database_url(), "coalition_bench")
    await upgrade_to_head(url)
    db = Database(url, pool_size=4)
    partner = await make_partner(db, name=f"Bench {uuid.uuid4().hex[:6]}")
    enrolled = [await enroll(db, partner) for _ in range(args.members)]
    ruled = await make_partner(db, name=f"Bench rules {uuid.uuid4().hex[:6]}")
    await _twenty_rules(db, ruled)
    await _three_promotions(db, ruled)
    ruled_members = [await enroll(db, ruled) for _ in range(args.members)]
    if args.tiers:
        from services.engagement import tiers
        from tests.factories import ADMIN

        await tiers.create_tier(db, ADMIN, tiers.TierTerms("Base", 0, "1.25"))
        await tiers.create_tier(db, ADMIN, tiers.TierTerms("Gold", 1_000_000, "2"))
    await db.dispose()

    async with served(url, args.workers) as base:
        token, ruled_token = (partner_token(base, p.client_id, p.client_secret) for p in (partner, ruled))
        numbers = [m.member_number for m in enrolled]
        ruled_numbers = [m.member_number for m in ruled_members]
        print(
            f"concurrency {args.concurrency}, {args.seconds:.0f}s each, {args.workers} server workers, "
            f"{os.cpu_count()} cores"
        )
        await _graphql_run(base, token, numbers, args.concurrency, 2)  # warm-up
        await _graphql_run(base, ruled_token, ruled_numbers, args.concurrency, 2, lines=True)
        g_lat, g_elapsed = await _graphql_run(base, token, numbers, args.concurrency, args.seconds)
        x_lat, x_elapsed = await _graphql_run(
            base, ruled_token, ruled_numbers, args.concurrency, args.seconds, lines=True
        )
        # The same partner, the flat run's request (no lines): what the rules alone cost.
        y_lat, y_elapsed = await _graphql_run(
            base, ruled_token, ruled_numbers, args.concurrency, args.seconds
        )
    r_lat, r_elapsed = await _raw_run(
        url,
        partner.id,
        partner.client_id,
        [m.id for m in enrolled],
        args.concurrency,
        args.seconds,
    )
    graphql_rate = _report("flat", g_lat, g_elapsed)
    rules_rate = _report("20r+3p", x_lat, x_elapsed)
    bare_rate = _report("20r+3p, 1 ln", y_lat, y_elapsed)
    raw_rate = _report("raw", r_lat, r_elapsed)
    print(f"ratio 20 rules + 3 promotions (3 lines)/flat = {rules_rate / graphql_rate:.2f}")
    print(f"ratio 20 rules + 3 promotions (no lines)/flat = {bare_rate / graphql_rate:.2f}")
    print(f"ratio graphql/raw = {graphql_rate / raw_rate:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
