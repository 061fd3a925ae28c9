"""Bulk earn throughput: `recordPurchases` over real HTTP and `coalition import purchases`, against a
same-run baseline: COPY of the same rows into an unindexed table (what this machine's PostgreSQL
can take in at all).

    .venv/bin/python bench/bulk_earn.py [--rows 100000] [--members 5000] [--workers 2] [--concurrency 4]
    .venv/bin/python bench/bulk_earn.py --rows 1000000 --import-only     # memory: peak RSS of the import
    .venv/bin/python bench/bulk_earn.py --million                        # the same
    .venv/bin/python bench/bulk_earn.py --rows 20000 --rules   # the partner has bench/earn.py's 20 rules

It also prints what a run cost the whole machine in CPU per 1,000 rows (every process: gateway,
PostgreSQL, load client; PostgreSQL's share for recordPurchases), and so the most any split of
the work over the cores could reach: the ceiling that a rate target must fit under.

Everything runs in this one invocation against a fresh database on the same server, so the ratios
are what the ledger's bulk path costs on this machine today (its speed moves between days: compare
only within a run). Members are enrolled through the services and have earned once (their wallets
are open), as a partner's regular customers have.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.earn import _twenty_rules
from bench.loadclient import Connection
from bench.served import partner_token, served
from shared.database import Database, _asyncpg_dsn, recreate_database, resolve_database_url
from shared.migrate import upgrade_to_head
from tests.factories import earn, enroll, make_partner

MUTATION = (
    "mutation($input: RecordPurchasesInput!) { recordPurchases(input: $input) {"
    " results { transaction { id points } pointsEarned userErrors { code field message } }"
    " userErrors { code field message } } }"
)
BATCH = 1000
OCCURRED = "2026-12-01T09:30:00+00:00"
AMOUNTS = ["12.90", "4.50", "31.00", "7.25", "99.99", "18.40"]


def _rows(numbers: list[str], count: int, tag: str, seed: int) -> list[tuple[str, str, str, str, str]]:
    rng = random.Random(seed)
    return [(rng.choice(numbers), f"{tag}-{i}", rng.choice(AMOUNTS), "EUR", OCCURRED) for i in range(count)]


def machine_cpu_seconds() -> float:
    """CPU time every process on the machine has used (/proc/stat, all cores, idle and iowait left
    out): around a run, what the run cost the machine whichever process spent it (the gateway,
    PostgreSQL, the load client), a figure that does not depend on how the two cores were shared."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time of the PostgreSQL processes alive now (server backends of the gateway's pools are:
    read it before they close). Only where the server runs on this machine; 0 otherwise."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            if not fields[0].endswith("(postgres"):
                continue
            values = fields[1].split()
            total += int(values[11]) + int(values[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _cpu_line(name: str, rows: int, cpu_seconds: float, postgres_seconds: float | None = None) -> None:
    per_thousand = cpu_seconds / rows * 1000 * 1000
    cores = os.cpu_count() or 1
    postgres = ""
    if postgres_seconds is not None:
        postgres = f", of which PostgreSQL {postgres_seconds / rows * 1000 * 1000:.0f} ms"
    print(
        f"{name:<22} {per_thousand:7.0f} ms of CPU per 1,000 rows (all processes{postgres}):"
        f" at most {cores * 1000 / per_thousand * 1000:6.0f} rows/s on {cores} fully used cores"
    )


def _line(name: str, rows: int, seconds: float, baseline: float | None = None) -> float:
    rate = rows / seconds
    ratio = f"  ratio to COPY {rate / baseline:5.3f}" if baseline else ""
    print(f"{name:<22} {rows:>9} rows in {seconds:7.2f}s  {rate:10.0f} rows/s{ratio}")
    return rate


async def _seed(url: str, members: int, rules: bool = False, tiers: bool = False) -> tuple[object, list[str]]:
    db = Database(url, pool_size=8)
    partner = await make_partner(db, name=f"Bench {uuid.uuid4().hex[:6]}")
    if rules:  # bench/earn.py's 20 rules (none per member: the batch stays set-based)
        await _twenty_rules(db, partner)
    if tiers:  # a multiplying base tier, and Silver, reached by some members during the run
        from services.engagement import tiers as engagement_tiers
        from tests.factories import ADMIN

        await engagement_tiers.create_tier(db, ADMIN, engagement_tiers.TierTerms("Base", 0, "1.25"))
        await engagement_tiers.create_tier(db, ADMIN, engagement_tiers.TierTerms("Silver", 150, "2"))
    numbers: list[str] = []

    async def one() -> None:
        member = await enroll(db, partner)
        await earn(db, partner, member.member_number, "1")  # opens the wallet, as a regular's is
        numbers.append(member.member_number)

    for start in range(0, members, 16):
        await asyncio.gather(*(one() for _ in range(min(16, members - start))))
    await db.dispose()
    return partner, numbers


async def _copy_baseline(url: str, rows: list[tuple[str, str, str, str, str]]) -> float:
    """COPY of the same rows into a table without indexes or constraints, in one transaction."""
    dsn, kwargs = _asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS bench_copy_baseline; CREATE TABLE bench_copy_baseline"
            " (member_number text, order_id text, amount numeric, currency text, occurred_at timestamptz)"
        )
        from datetime import datetime

        when = datetime.fromisoformat(OCCURRED)
        records = [(m, o, Decimal(a), c, when) for m, o, a, c, _ in rows]
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_copy_baseline", records=records)
        return time.perf_counter() - started
    finally:
        await conn.close()


def _bodies(rows: list[tuple[str, str, str, str, str]]) -> list[bytes]:
    bodies = []
    for start in range(0, len(rows), BATCH):
        purchases = [
            {
                "idempotencyKey": f"k-{o}",
                "memberNumber": m,
                "orderId": o,
                "amount": {"amount": a, "currency": c},
                "occurredAt": t,
            }
            for m, o, a, c, t in rows[start : start + BATCH]
        ]
        bodies.append(
            json.dumps({"query": MUTATION, "variables": {"input": {"purchases": purchases}}}).encode()
        )
    return bodies


async def _http_run(base: str, token: str, bodies: list[bytes], concurrency: int) -> tuple[float, int]:
    host, port = base.removeprefix("http://").split(":")
    queue = list(reversed(bodies))
    failed = 0

    async def worker() -> None:
        nonlocal failed
        conn = Connection(host, int(port), f"Bearer {token}")
        await conn.open()
        while queue:
            body = queue.pop()
            status, payload = await conn.post(body)
            if status != 200 or b'"code"' in payload:
                failed += 1
                if failed < 3:
                    print("error:", status, payload[:300])
        await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, failed


def _write_csv(path: Path, rows: list[tuple[str, str, str, str, str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["memberNumber", "orderId", "amount", "currency", "occurredAt"])
        writer.writerows(rows)


def _write_csv_streaming(path: Path, numbers: list[str], count: int, tag: str) -> None:
    """A big file written row by row (a million rows are not held in this process either)."""
    rng = random.Random(7)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["memberNumber", "orderId", "amount", "currency", "occurredAt"])
        for i in range(count):
            writer.writerow([rng.choice(numbers), f"{tag}-{i}", rng.choice(AMOUNTS), "EUR", OCCURRED])


def _import(url: str, partner_id: int, path: Path) -> tuple[float, int, str]:
    """Runs the real CLI; (seconds, peak RSS in MiB of that process, its stdout)."""
    coalition = str(Path(sys.executable).parent / "coalition")
    env = {**os.environ, "DATABASE_URL": url}
    started = time.perf_counter()
    process = subprocess.Popen(
        [coalition, "import", "purchases", "--partner", str(partner_id), str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    out = process.stdout.read().decode() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        print(f"import exited {process.returncode}:\n{out}")
    return elapsed, usage.ru_maxrss // 1024, out


def _audit(url: str) -> str:
    """`coalition audit` over everything the run wrote: its last line (all hold, or violations)."""
    coalition = str(Path(sys.executable).parent / "coalition")
    done = subprocess.run(
        [coalition, "audit"], env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True
    )
    lines = done.stdout.strip().splitlines()
    return f"audit exit {done.returncode}: {lines[-1] if lines else done.stderr.strip()}"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--import-only", action="store_true", help="only the CSV import (memory figures)")
    parser.add_argument("--rules", action="store_true", help="the partner has bench/earn.py's 20 earn rules")
    parser.add_argument("--tiers", action="store_true", help="a multiplying base tier and Silver")
    parser.add_argument("--million", action="store_true", help="--rows 1000000 --import-only")
    parser.add_argument("--database", default="coalition_bench_bulk", help="the scratch database's name")
    args = parser.parse_args()
    if args.million:
        args.rows, args.import_only = 1_000_000, True

    url = await recreate_database(resolve_database_url(), args.database)
    await upgrade_to_head(url)
    partner, numbers = await _seed(url, args.members, args.rules, args.tiers)
    print(
        f"{args.rows} rows, {len(numbers)} members, {os.cpu_count()} cores, batches of {BATCH}"
        f"{', 20 earn rules' if args.rules else ''}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        if args.import_only:
            small, big = Path(tmp) / "small.csv", Path(tmp) / "big.csv"
            _write_csv_streaming(small, numbers, 10_000, "s")
            _write_csv_streaming(big, numbers, args.rows, "b")
            s_elapsed, s_rss, _ = _import(url, partner.id, small)  # type: ignore[attr-defined]
            b_elapsed, b_rss, out = _import(url, partner.id, big)  # type: ignore[attr-defined]
            print(out.strip())
            _line("import (10,000 rows)", 10_000, s_elapsed)
            copy_seconds = await _copy_baseline(url, _rows(numbers, min(args.rows, 200_000), "c", 5))
            baseline = _line("COPY (unindexed)", min(args.rows, 200_000), copy_seconds)
            _line(f"import ({args.rows:,} rows)", args.rows, b_elapsed, baseline)
            print(f"peak RSS of the import: {s_rss} MiB for 10,000 rows, {b_rss} MiB for {args.rows:,} rows")
            print(_audit(url))
            return

        http_rows = _rows(numbers, args.rows, "h", 1)
        import_rows = _rows(numbers, args.rows, "f", 2)
        copy_seconds = await _copy_baseline(url, http_rows)
        bodies = _bodies(http_rows)

        async with served(url, args.workers) as base:
            token = partner_token(base, partner.client_id, partner.client_secret)  # type: ignore[attr-defined]
            warm = _bodies(_rows(numbers, 2 * BATCH * args.concurrency, "w", 3))
            await _http_run(base, token, warm, args.concurrency)
            cpu_before, postgres_before = machine_cpu_seconds(), postgres_cpu_seconds()
            http_seconds, failed = await _http_run(base, token, bodies, args.concurrency)
            http_cpu = machine_cpu_seconds() - cpu_before
            http_postgres = postgres_cpu_seconds() - postgres_before
        if failed:
            print(f"recordPurchases: {failed} requests with errors")

        path, tiny = Path(tmp) / "sales.csv", Path(tmp) / "tiny.csv"
        _write_csv(path, import_rows)
        _write_csv(tiny, _rows(numbers, 10, "t", 4))
        # The CLI's start (imports, connections: ~3 s here) is no part of the throughput: a
        # 10-row import measures it, and the steady rate is what the big one took beyond that.
        startup_seconds, _, _ = _import(url, partner.id, tiny)  # type: ignore[attr-defined]
        cpu_before = machine_cpu_seconds()
        import_seconds, rss, _ = _import(url, partner.id, path)  # type: ignore[attr-defined]
        import_cpu = machine_cpu_seconds() - cpu_before

    print(
        f"recordPurchases: {args.workers} gateway workers, {args.concurrency} concurrent requests;"
        " import: one CLI process (its startup included)"
    )
    baseline = _line("COPY (unindexed)", args.rows, copy_seconds)
    _line("recordPurchases (HTTP)", args.rows, http_seconds, baseline)
    _line("import (CLI)", args.rows, import_seconds, baseline)
    _line("import (CLI - start)", args.rows, max(import_seconds - startup_seconds, 1e-3), baseline)
    print(f"the CLI's start (a 10-row import): {startup_seconds:.2f}s")
    _cpu_line("recordPurchases (HTTP)", args.rows, http_cpu, http_postgres)
    _cpu_line("import (CLI)", args.rows, import_cpu)
    print(f"peak RSS of the import: {rss} MiB")
    print(_audit(url))


if __name__ == "__main__":
    asyncio.run(main())
