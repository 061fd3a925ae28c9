"""Worker throughput: a million lots fall due; how fast are they activated, then expired?

    .venv/bin/python bench/worker.py [--lots 1000000] [--members 10000] [--batch 5000]

Lots are bulk-loaded (bench/bulk.py: the rows an earn writes) with a return window that has
passed and an expiry that has passed, then the worker's jobs run to completion; `coalition audit`'s
checks run at the end to show the books still balance.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bulk import load_lots
from services.gateway.worker import run_job
from services.ledger.audit import audit
from services.ledger.scheduled import activate_due_lots, expire_due_lots
from shared import clock
from shared.database import Database, recreate_database, resolve_database_url
from shared.migrate import upgrade_to_head
from tests.factories import enroll, make_partner


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    per_member = max(1, args.lots // args.members)

    url = await recreate_database(resolve_database_url(), "coalition_bench_worker")
    await upgrade_to_head(url)
    db = Database(url, pool_size=4)
    partner = await make_partner(db, name=f"Bench {uuid.uuid4().hex[:6]}")
    started = time.perf_counter()
    members = await asyncio.gather(*[enroll(db, partner) for _ in range(args.members)])
    now = clock.now()
    ids = [m.id for m in members]
    for start in range(0, len(ids), 500):
        await load_lots(
            db,
            partner_id=partner.id,
            member_ids=ids[start : start + 500],
            per_member=per_member,
            points=10,
            earned_at=now - timedelta(days=800),
            available_at=now - timedelta(days=786),
            expires_at=now - timedelta(days=70),
            tag=uuid.uuid4().hex[:6],
        )
    total = per_member * len(ids)
    print(f"loaded {total:,} lots for {len(ids):,} members in {time.perf_counter() - started:.1f}s")

    for name, job in (("activate", activate_due_lots), ("expire", expire_due_lots)):
        started = time.perf_counter()
        result = await run_job(db, job, args.batch)
        elapsed = time.perf_counter() - started
        print(f"{name:<9} {result.rows:>10,} lots in {elapsed:6.1f}s  {result.rows / elapsed:10,.0f} lots/s")

    started = time.perf_counter()
    violations = await audit(db)
    print(f"audit: {len(violations)} violations in {time.perf_counter() - started:.1f}s")
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
