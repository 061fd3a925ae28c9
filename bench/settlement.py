"""Settlement throughput: N lot consumptions across P partners, then `runSettlement` on them.

    .venv/bin/python bench/settlement.py [--consumptions 100000] [--partners 50]

Earns and redemptions are bulk-loaded (bench/bulk.py: the rows the ledger writes; the audit runs
to prove it), each lot issued by one partner and spent at another, all inside one period; then the
settlement run is timed. The work is SQL aggregates; Python holds only P² obligations.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench.bulk import load_lots, redeem_all
from services.ledger.audit import audit
from services.settlement import service as settlement
from services.settlement.audit import audit_runs
from shared import clock
from shared.access import ADMIN_SCOPES, Principal
from shared.database import Database, recreate_database, resolve_database_url
from shared.migrate import upgrade_to_head
from tests.factories import enroll, make_partner

SETTLER = Principal(client_id="bench", scopes=ADMIN_SCOPES)
BASELINE = text(
    "SELECT issuing_partner_id, counterparty_partner_id, SUM(points) FROM lot_consumptions"
    " WHERE occurred_at >= :start AND occurred_at < :end GROUP BY 1, 2"
)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--consumptions", type=int, default=100_000)
    parser.add_argument("--partners", type=int, default=50)
    parser.add_argument("--lots-per-member", type=int, default=10)
    parser.add_argument("--skip-audit", action="store_true")
    args = parser.parse_args()

    url = await recreate_database(resolve_database_url(), "coalition_bench_settlement")
    await upgrade_to_head(url)
    db = Database(url, pool_size=4)
    partners = [
        await make_partner(
            db,
            name=f"P{i} {uuid.uuid4().hex[:4]}",
            redeem_price=str(Decimal("0.005") + Decimal(i) / 10_000),
            issue_fee_per_point=Decimal("0.0005"),
        )
        for i in range(args.partners)
    ]
    members_needed = max(1, args.consumptions // args.lots_per_member)
    started = time.perf_counter()
    members = []
    for start in range(0, members_needed, 200):  # bounded: the pool has a handful of connections
        members += await asyncio.gather(
            *[enroll(db, partners[i % len(partners)]) for i in range(start, min(start + 200, members_needed))]
        )
    now = clock.now().replace(microsecond=0)
    period_start, at = now - timedelta(days=2), now - timedelta(days=1)
    by_issuer: dict[int, list[int]] = {}
    for i, m in enumerate(members):
        by_issuer.setdefault(partners[i % len(partners)].id, []).append(m.id)
    partner_ids = [p.id for p in partners]

    async def earn_and_spend(issuer: int, member_ids: list[int]) -> None:
        """Lots of 37 points issued by `issuer`, all spent across every partner, at `at`."""
        await load_lots(
            db,
            partner_id=issuer,
            member_ids=member_ids,
            per_member=args.lots_per_member,
            points=37,
            earned_at=at,
            available_at=at,
            expires_at=now + timedelta(days=700),
            tag=uuid.uuid4().hex[:6],
        )
        await redeem_all(db, member_ids=member_ids, partner_ids=partner_ids, at=at)

    for issuer, ids in by_issuer.items():
        for start in range(0, len(ids), 1000):
            await earn_and_spend(issuer, ids[start : start + 1000])
    total = members_needed * args.lots_per_member
    print(
        f"loaded {total:,} earns and {total:,} consumptions across {len(partners)} partners "
        f"in {time.perf_counter() - started:.1f}s"
    )
    if not args.skip_audit:
        started = time.perf_counter()
        found = await audit(db)
        print(f"audit: {len(found)} violations in {time.perf_counter() - started:.1f}s")

    period_end = now - timedelta(hours=1)
    # A month's ledger has been analyzed by autovacuum long before the period is settled; a bulk
    # load just now has not, and the planner would be guessing.
    async with db.sessions() as session:
        await session.execute(text("ANALYZE"))
        await session.commit()  # statistics written in a rolled-back transaction are lost
    # Baseline, same run: the least any settlement must do, one pass summing the period's
    # consumptions per (issuer, redeemer) with no pricing, no recording cutoff, no rounding.
    async with db.sessions() as session:
        await session.execute(BASELINE, {"start": period_start, "end": period_end})  # warm the cache
        started = time.perf_counter()
        await session.execute(BASELINE, {"start": period_start, "end": period_end})
        baseline = time.perf_counter() - started
    print(f"baseline (bare GROUP BY over the consumptions): {baseline:.2f}s = {total / baseline:,.0f}/s")

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    run = await settlement.run_settlement(db, SETTLER, period_start=period_start, period_end=period_end)
    elapsed = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lines = sum(len(s.lines) for s in run.statements)
    print(
        f"runSettlement: {total:,} consumptions in {elapsed:.2f}s = {total / elapsed:,.0f} "
        f"consumptions/s; {len(run.statements)} statements, {lines:,} lines; peak RSS "
        f"{rss_after / 1024:.0f} MiB (+{(rss_after - rss_before) / 1024:.0f} MiB during the run); "
        f"{elapsed / baseline:.1f}x the baseline"
    )
    assert sum((s.net for s in run.statements), Decimal(0)) == 0

    # Late arrivals: finalize, then record 1% more consumptions inside the finalized period and
    # settle the next (empty) period, which must find them by recording time.
    await settlement.finalize_settlement(db, SETTLER, run.id)
    late_members = [m.id for m in members[: max(1, len(members) // 100)]]
    await earn_and_spend(partners[0].id, late_members)
    late_total = len(late_members) * args.lots_per_member
    started = time.perf_counter()
    nxt = await settlement.run_settlement(db, SETTLER, period_start=period_end, period_end=now)
    late_elapsed = time.perf_counter() - started
    adjusted = sum(x.points for x in nxt.lines if x.adjusted_kind in ("REDEMPTION_RECEIVABLE", "INTERNAL"))
    print(
        f"next run with {late_total:,} late consumptions: {late_elapsed:.2f}s, adjustment lines carry "
        f"{adjusted:,} points ({late_elapsed / baseline:.2f}x the baseline)"
    )
    assert adjusted == late_total * 37, (adjusted, late_total * 37)
    problems = await audit_runs(db)
    print(f"settlement audit: {len(problems)} violations")
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
