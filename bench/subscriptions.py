"""Live balances: how long from an earn to its event on another gateway process, and how many idle
subscribed sockets one gateway process holds.

    .venv/bin/python bench/subscriptions.py [--events 1000] [--sockets 5000]

Two `coalition serve` processes (A and B) on one scratch database, behind one issuer name.

- Latency: a member subscribes to `balanceChanged` on A; `--events` earns are sent one after the
  other through B's GraphQL API (`recordPurchase`, over HTTP). For each: the time from B's answer
  (the earn has committed) to the event on A, and from the request being sent to the event (the
  whole earn included). The first can be negative: the NOTIFY may beat B's HTTP answer.
- Capacity: `--sockets` members each open a socket to A and subscribe (one member per socket:
  a member may hold 10 sockets per process, `sockets.MAX_SOCKETS_PER_MEMBER`); A's resident
  memory (VmRSS) is read before and after, then one earn per sampled member checks the sockets
  still answer. Each socket is a file descriptor on both ends: this process raises its own soft
  limit (its children, the servers, inherit it, and `coalition serve` raises its own anyway:
  `raise_open_file_limit`), and says so up front when the hard limit is too low.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from tempfile import mkdtemp

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.identity import service as identity
from shared.database import Database, drop_database, recreate_database, resolve_database_url
from shared.migrate import upgrade_to_head
from shared.settings import get_settings
from tests.conftest import member_token
from tests.e2e.conftest import Gateway, start_gateway
from tests.factories import enroll, make_partner
from tests.gateway.queries import PURCHASE
from tests.graphql_ws import subscribed

DATABASE = "coalition_bench_subscriptions"
BALANCE = "subscription { balanceChanged { available reason } }"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise RuntimeError("no open files limit")


def _open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


async def _token(http: httpx.AsyncClient, base: str, client_id: str, secret: str) -> str:
    response = await http.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


async def _earn(http: httpx.AsyncClient, base: str, token: str, number: str) -> None:
    variables = {
        "input": {
            "idempotencyKey": str(uuid.uuid4()),
            "memberNumber": number,
            "orderId": str(uuid.uuid4()),
            "amount": {"amount": "1", "currency": "EUR"},
        }
    }
    response = await http.post(
        f"{base}/graphql",
        json={"query": PURCHASE, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json()["data"]["recordPurchase"]["userErrors"] == [], response.text


def _ws(gateway: Gateway) -> str:
    return f"ws://127.0.0.1:{gateway.port}/graphql"


async def _latency(db: Database, a: Gateway, b: Gateway, events: int) -> None:
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    async with httpx.AsyncClient(timeout=10) as http:
        token = await _token(http, b.base, cafe.client_id, cafe.client_secret)
        async with subscribed(_ws(a), await member_token(db, member.id), BALANCE) as (socket, _op):
            await socket.receive()  # CURRENT
            await _earn(http, b.base, token, member.member_number)  # warm both paths
            await socket.receive()
            after_answer, after_send = [], []

            async def timed_earn() -> float:
                await _earn(http, b.base, token, member.member_number)
                return time.perf_counter()

            for _ in range(events):
                sent = time.perf_counter()
                answer = asyncio.ensure_future(timed_earn())
                message = await socket.receive()
                heard = time.perf_counter()
                answered = await answer
                assert message["payload"]["data"]["balanceChanged"]["reason"] == "EARN", message
                after_send.append(heard - sent)
                after_answer.append(heard - answered)
    print(
        f"latency over {events} earns through B, subscriber on A: request sent -> event"
        f" p50 {_ms(statistics.median(after_send))}, p99 {_ms(_pct(after_send, 0.99))};"
        f" B's answer -> event p50 {_ms(statistics.median(after_answer))},"
        f" p99 {_ms(_pct(after_answer, 0.99))} (negative: the event came first)"
    )


async def _capacity(db: Database, a: Gateway, b: Gateway, sockets: int) -> None:
    cafe = await make_partner(db)
    numbers: list[tuple[int, str]] = []
    for _ in range(sockets):
        member = await enroll(db, cafe)
        numbers.append((member.id, member.member_number))
    tokens = [await member_token(db, member_id) for member_id, _ in numbers]
    before = _rss_kib(a.popen.pid)
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        opened = []
        for chunk in range(0, sockets, 100):  # 100 handshakes at a time
            batch = [
                stack.enter_async_context(subscribed(_ws(a), token, BALANCE, seconds=60))
                for token in tokens[chunk : chunk + 100]
            ]
            for pair in await asyncio.gather(*batch):
                opened.append(pair)
            await asyncio.gather(*(socket.receive(60) for socket, _ in opened[chunk:]))
        took = time.monotonic() - started
        await asyncio.sleep(2)
        after = _rss_kib(a.popen.pid)
        async with httpx.AsyncClient(timeout=10) as http:
            token = await _token(http, b.base, cafe.client_id, cafe.client_secret)
            sample = range(0, sockets, max(1, sockets // 20))
            for i in sample:
                await _earn(http, b.base, token, numbers[i][1])
                message = await opened[i][0].receive(10)
                assert message["payload"]["data"]["balanceChanged"]["reason"] == "EARN", message
        per_socket = (after - before) / sockets
        print(
            f"capacity: {len(opened)} subscribed sockets open on A in {took:.1f} s"
            f" (A's open files limit {_open_files_limit(a.popen.pid)}, {_open_fds(a.popen.pid)} open);"
            f" A's RSS {before / 1024:.0f} -> {after / 1024:.0f} MiB,"
            f" {per_socket:.1f} KiB per socket; {len(sample)} sampled sockets"
            " each heard its member's earn"
        )


async def _run(url: str, a: Gateway, b: Gateway, events: int, sockets: int) -> None:
    db = Database(url, pool_size=4)
    try:
        await _latency(db, a, b, events)
        if sockets:
            await _capacity(db, a, b, sockets)
    finally:
        await db.dispose()


async def _prepare(url: str) -> None:
    db = Database(url, pool_size=2)
    try:
        async with db.sessions() as session:
            await identity.ensure_signing_key(session)
            await session.commit()
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--sockets", type=int, default=5000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.sockets + 1024  # this process's end of every socket, its pools and files
    if hard != resource.RLIM_INFINITY and hard < needed:
        sys.exit(f"--sockets {args.sockets} needs {needed} open files; the hard limit is {hard} (ulimit -Hn)")
    wanted = 4 * args.sockets + 1024  # room to spare: the servers inherit it
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    base = resolve_database_url()
    url = asyncio.run(recreate_database(base, DATABASE))
    logs = Path(mkdtemp(prefix="coalition-bench-subscriptions-"))
    try:
        asyncio.run(upgrade_to_head(url))
        asyncio.run(_prepare(url))
        issuer = get_settings().issuer
        a = start_gateway(url, logs / "a.log", issuer=issuer)
        try:
            b = start_gateway(url, logs / "b.log", issuer=issuer)
            try:
                asyncio.run(_run(url, a, b, args.events, args.sockets))
            finally:
                b.stop()
        finally:
            a.stop()
    finally:
        asyncio.run(drop_database(base, DATABASE))
    print(f"(server logs: {logs})")


if __name__ == "__main__":
    main()
