"""Read throughput: a partner's `member(memberNumber) { balance }` against `/healthz`, same run.

    .venv/bin/python bench/read.py [--concurrency 32] [--seconds 15] [--rounds 5] [--workers 1]
        [--client wrk|python]

`/healthz` is a Starlette route that runs `SELECT 1` through SQLAlchemy: one round trip to
PostgreSQL and next to no Python. A balance read is one round trip too (issue 10), so the ratio
balance/healthz is what GraphQL, the token check and the read's own Python cost on top of the
round trip. Both are measured against one `coalition serve` (default one worker, as `make run`)
on a fresh database, one after the other, with the same keep-alive load client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loadclient import Connection
from bench.served import partner_token, served
from shared import sql
from shared.database import Database, recreate_database, resolve_database_url
from shared.migrate import upgrade_to_head
from tests.factories import earn, enroll, make_partner

QUERY = "query($n: String!) { member(memberNumber: $n) { balance { available pending held } } }"


class Result:
    def __init__(self, name: str, latencies: list[float], elapsed: float, errors: int):
        self.name, self.latencies, self.elapsed, self.errors = name, latencies, elapsed, errors
        ordered = sorted(latencies)
        self.rate = len(latencies) / elapsed
        self.p50 = statistics.median(ordered) * 1000
        self.p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000

    def line(self) -> str:
        failed = f"  {self.errors} failed" if self.errors else ""
        return (
            f"{self.name:<8} {len(self.latencies):>7} requests in {self.elapsed:5.1f}s"
            f"  {self.rate:8.0f} req/s  p50 {self.p50:6.1f} ms  p99 {self.p99:6.1f} ms{failed}"
        )


Request = Callable[[Connection, int, int], Awaitable[bool]]

# wrk's Lua: `done` prints what the figures need (latency percentiles in microseconds, and every
# failure: non-2xx answers and socket errors); the balance script sends each request for the next
# member.
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %f %d %d %d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99), e.status + e.connect + e.read + e.timeout))
end
"""
WRK_BALANCE = """
local numbers = {%s}
local i = 0
request = function()
  i = i + 1
  local body = '{"query": "%s", "variables": {"n": "' .. numbers[(i %% #numbers) + 1] .. '"}}'
  return wrk.format("POST", "/graphql", {["Authorization"] = "Bearer %s",
    ["Content-Type"] = "application/json"}, body)
end
"""


class WrkResult(Result):
    def __init__(self, name: str, requests: int, elapsed: float, p50_us: int, p99_us: int, errors: int):
        self.name, self.elapsed, self.errors = name, elapsed, errors
        self.latencies = [0.0] * requests  # only the count is used for the line
        self.rate = requests / elapsed
        self.p50, self.p99 = p50_us / 1000, p99_us / 1000


def _wrk(name: str, url: str, script: str, concurrency: int, seconds: float) -> WrkResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        out = subprocess.run(
            ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "-s", lua.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    found = re.search(r"RESULT (\d+) ([\d.]+) (\d+) (\d+) (\d+)", out)
    assert found, out
    requests, elapsed, p50, p99, errors = found.groups()
    return WrkResult(name, int(requests), float(elapsed), int(p50), int(p99), int(errors))


async def _run(
    name: str, base: str, token: str, request: Request, concurrency: int, seconds: float
) -> Result:
    """`concurrency` keep-alive connections, each sending its next request as soon as the last
    answered, for `seconds`."""
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal errors
        conn = Connection(host, int(port), f"Bearer {token}")
        await conn.open()
        n = 0
        try:
            while time.perf_counter() < deadline:
                n += 1
                started = time.perf_counter()
                ok = await request(conn, index, n)
                latencies.append(time.perf_counter() - started)
                errors += not ok
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return Result(name, latencies, time.perf_counter() - started, errors)


async def _seed(url: str, members: int) -> tuple[object, list[str]]:
    """A partner and its members, each with two earns (two lots) so the balance has rows to sum."""
    db = Database(url, pool_size=4)
    try:
        partner = await make_partner(db, name=f"Bench {uuid.uuid4().hex[:6]}")
        numbers = []
        for _ in range(members):
            member = await enroll(db, partner)
            for amount in ("12.90", "7.50"):
                outcome = await earn(db, partner, member.member_number, amount)
                assert outcome.errors == [], outcome.errors
            numbers.append(member.member_number)
        async with sql.connection(db) as conn:  # statistics, as autovacuum keeps them in production
            await conn.execute("ANALYZE")
    finally:
        await db.dispose()
    return partner, numbers


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=1, help="server processes (make run: 1)")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved healthz/balance rounds")
    parser.add_argument(
        "--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python"
    )
    args = parser.parse_args()

    url = await recreate_database(resolve_database_url(), "coalition_bench_read")
    await upgrade_to_head(url)
    partner, numbers = await _seed(url, args.members)

    async def healthz(conn: Connection, index: int, n: int) -> bool:
        status, _ = await conn.get("/healthz")
        return status == 200

    async def balance(conn: Connection, index: int, n: int) -> bool:
        number = numbers[(index * 7919 + n) % len(numbers)]
        body = json.dumps({"query": QUERY, "variables": {"n": number}}).encode()
        status, payload = await conn.post(body)
        return status == 200 and b'"available":' in payload and b'"errors"' not in payload

    async with served(url, args.workers) as base:
        token = partner_token(base, partner.client_id, partner.client_secret)  # type: ignore[attr-defined]
        print(
            f"concurrency {args.concurrency}, {args.seconds:.0f}s each, {args.workers} server worker(s), "
            f"{os.cpu_count()} cores, {len(numbers)} members, load client {args.client}"
        )
        # Interleaved rounds, healthz then balance in each: the machine's speed drifts within a
        # run (other work, frequency), and a ratio of two back-to-back 15 s runs drifted with it.
        rounds: list[tuple[Result, Result]] = []
        slice_seconds = args.seconds / args.rounds
        if args.client == "wrk":
            listed = ",".join(f'"{n}"' for n in numbers)
            script = WRK_BALANCE % (listed, QUERY, token) + WRK_DONE
            for path, lua in (("/healthz", WRK_DONE), ("/graphql", script)):
                _wrk("warm-up", base + path, lua, args.concurrency, 2)  # pool, caches, plans
            for _ in range(args.rounds):
                rounds.append(
                    (
                        _wrk("healthz", base + "/healthz", WRK_DONE, args.concurrency, slice_seconds),
                        _wrk("balance", base + "/graphql", script, args.concurrency, slice_seconds),
                    )
                )
        else:
            for request in (healthz, balance):
                await _run("warm-up", base, token, request, args.concurrency, 2)
            for _ in range(args.rounds):
                rounds.append(
                    (
                        await _run("healthz", base, token, healthz, args.concurrency, slice_seconds),
                        await _run("balance", base, token, balance, args.concurrency, slice_seconds),
                    )
                )
    for health, read in rounds:
        print(f"{health.line()}\n{read.line()}")
    ratios = sorted(read.rate / health.rate for health, read in rounds)
    health_rate = sum(h.rate for h, _ in rounds) / len(rounds)
    read_rate = sum(r.rate for _, r in rounds) / len(rounds)
    print(
        f"mean over {len(rounds)} rounds: healthz {health_rate:.0f} req/s, balance {read_rate:.0f} req/s;"
        f" balance p50 {statistics.median(r.p50 for _, r in rounds):.1f} ms,"
        f" p99 {statistics.median(r.p99 for _, r in rounds):.1f} ms (median of rounds)"
    )
    print(
        f"ratio balance/healthz: median {statistics.median(ratios):.2f},"
        f" rounds {ratios[0]:.2f} - {ratios[-1]:.2f}"
        "  (target >= 0.70, and balance p99 < 50 ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
