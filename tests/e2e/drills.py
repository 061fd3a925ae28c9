"""Bounded earning load for the fault drills, and the check that nothing acknowledged was lost.

Each simulated till earns for its own member with a fresh idempotency key per purchase and, like a
real till, retries a purchase with the same key until it is acknowledged (HTTP 200 with a
transaction). Every answer that is neither an acknowledgement nor a retryable refusal (503 with
`extensions.code` UNAVAILABLE or TIMEOUT and a Retry-After header) is kept as `unexpected`;
transport errors (a killed gateway) are counted apart.

A slow request, for the shutdown and timeout tests, is an earn for a member whose wallet row the
test holds locked (`wallet_locked`): the earn locks that row first, so it waits exactly as long as
the test wants.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from shared.database import Database
from shared.ids import from_global_id
from shared.sql import connection
from tests.factories import SeededPartner, enroll, make_partner
from tests.gateway import queries as q

RETRYABLE_CODES = ("UNAVAILABLE", "TIMEOUT")


@dataclass(frozen=True)
class Till:
    token: str
    partner_id: int
    member_id: int
    member_number: str


@dataclass(frozen=True)
class Purchase:
    key: str
    order_id: str
    amount: Decimal

    @property
    def points(self) -> int:
        return int(self.amount)  # earn rate 1, floored per purchase


@dataclass
class Acknowledged:
    till: Till
    purchase: Purchase
    entry_id: int
    points: int
    sent: float  # time.monotonic() when the acknowledged attempt was sent
    at: float  # and when its answer came


@dataclass
class Outcomes:
    acknowledged: list[Acknowledged] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # retryable 503s by code
    transport_errors: int = 0
    replays: int = 0  # acknowledgements that came after a failed attempt of the same key
    unexpected: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return (
            len(self.acknowledged) + sum(self.refused.values()) + self.transport_errors + len(self.unexpected)
        )


async def seed_tills(db: Database, base: str, *, partners: int, tills: int) -> list[Till]:
    """`partners` partners (earn rate 1) and one enrolled member per till, with real tokens."""
    seeded: list[SeededPartner] = [await make_partner(db) for _ in range(partners)]
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        tokens = {}
        for partner in seeded:
            response = await client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(partner.client_id, partner.client_secret),
            )
            assert response.status_code == 200, response.text
            tokens[partner.id] = response.json()["access_token"]
    result = []
    for i in range(tills):
        partner = seeded[i % partners]
        member = await enroll(db, partner)
        result.append(Till(tokens[partner.id], partner.id, member.id, member.member_number))
    return result


def check_refusal(response: httpx.Response) -> str | None:
    """The code of a well-formed retryable refusal, or None."""
    if response.status_code != 503 or "retry-after" not in response.headers:
        return None
    try:
        errors = response.json()["errors"]
    except (ValueError, KeyError, TypeError):
        return None
    codes = {(e.get("extensions") or {}).get("code") for e in errors}
    return codes.pop() if len(codes) == 1 and codes <= set(RETRYABLE_CODES) else None


class EarnLoad:
    """`run` drives every till until `stop()` is called, then finishes each till's purchase in
    flight (retrying it until acknowledged) and returns."""

    def __init__(self, base: str, tills: list[Till], *, retry_pause: float = 0.05, deadline: float = 60):
        self.base = base
        self.tills = tills
        self.retry_pause = retry_pause
        self.deadline = deadline
        self.outcomes = Outcomes()
        self._stop = asyncio.Event()
        self.sent: list[Purchase] = []

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> Outcomes:
        limits = httpx.Limits(max_connections=len(self.tills), max_keepalive_connections=len(self.tills))
        async with httpx.AsyncClient(base_url=self.base, timeout=15, limits=limits) as client:
            await asyncio.gather(*(self._till(client, till, n) for n, till in enumerate(self.tills)))
        return self.outcomes

    async def _till(self, client: httpx.AsyncClient, till: Till, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            tag = f"{n}-{i}-{uuid.uuid4().hex[:8]}"
            purchase = Purchase(f"k-{tag}", f"o-{tag}", Decimal(10 + i % 7) + Decimal("0.50"))
            self.sent.append(purchase)
            await self.until_acknowledged(client, till, purchase)

    async def until_acknowledged(self, client: httpx.AsyncClient, till: Till, purchase: Purchase) -> None:
        request = purchase_request(till, purchase)
        started = time.monotonic()
        failed_before = False
        while True:
            if time.monotonic() - started > self.deadline:
                raise AssertionError(f"purchase {purchase.key} not acknowledged in {self.deadline} s")
            sent = time.monotonic()
            try:
                response = await client.post(**request)
            except httpx.TransportError:
                self.outcomes.transport_errors += 1
                failed_before = True
                await asyncio.sleep(self.retry_pause)
                continue
            ack = acknowledgement(response)
            if ack is not None:
                entry_id, points = ack
                self.outcomes.acknowledged.append(
                    Acknowledged(till, purchase, entry_id, points, sent, time.monotonic())
                )
                self.outcomes.replays += failed_before
                return
            code = check_refusal(response)
            if code is not None:
                self.outcomes.refused[code] += 1
            else:
                self.outcomes.unexpected.append(f"{response.status_code} {response.text[:300]}")
            failed_before = True
            await asyncio.sleep(self.retry_pause)


def purchase_request(till: Till, purchase: Purchase) -> dict[str, Any]:
    """Keyword arguments for `httpx.AsyncClient.post` that send `purchase` from `till`."""
    variables = {
        "input": {
            "idempotencyKey": purchase.key,
            "memberNumber": till.member_number,
            "orderId": purchase.order_id,
            "amount": {"amount": str(purchase.amount), "currency": "EUR"},
        }
    }
    return {
        "url": "/graphql",
        "json": {"query": q.PURCHASE, "variables": variables},
        "headers": {"Authorization": f"Bearer {till.token}"},
    }


def new_purchase(amount: str = "10.00") -> Purchase:
    tag = uuid.uuid4().hex[:12]
    return Purchase(f"k-{tag}", f"o-{tag}", Decimal(amount))


def acknowledgement(response: httpx.Response) -> tuple[int, int] | None:
    """(entry id, points) of an acknowledged earn: HTTP 200 with a transaction and no errors."""
    if response.status_code != 200:
        return None
    try:
        body: dict[str, Any] = response.json()
        transaction = body["data"]["recordPurchase"]["transaction"]
    except (ValueError, KeyError, TypeError):
        return None
    if not transaction or body.get("errors"):
        return None
    decoded = from_global_id(transaction["id"], "Transaction")
    assert decoded is not None, transaction
    return decoded[1], transaction["points"]


async def assert_each_acknowledged_once(db: Database, load: EarnLoad) -> None:
    """Every purchase sent was acknowledged once, is in the ledger exactly once as the entry the
    client was told, with its points; no entry exists for an order the load did not send."""
    acknowledged = load.outcomes.acknowledged
    keys = [a.purchase.key for a in acknowledged]
    assert len(set(keys)) == len(keys), "a purchase was acknowledged twice"
    assert sorted(keys) == sorted(p.key for p in load.sent), "a purchase sent was never acknowledged"
    orders = [a.purchase.order_id for a in acknowledged]
    async with connection(db) as conn:
        rows = await conn.fetch(
            "SELECT e.order_id, e.partner_id, e.id, e.points, count(*) OVER (PARTITION BY e.order_id) AS n,"
            " (SELECT count(*) FROM purchases p WHERE p.entry_id = e.id) AS purchases,"
            " (SELECT count(*) FROM lots l WHERE l.earn_entry_id = e.id) AS lots,"
            " (SELECT coalesce(sum(amount), 0) FROM postings x WHERE x.entry_id = e.id) AS net,"
            " (SELECT count(*) FROM postings x WHERE x.entry_id = e.id) AS postings"
            " FROM journal_entries e WHERE e.kind = 'EARN' AND e.order_id = ANY($1::text[])",
            orders,
        )
        stored_keys = await conn.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE key = ANY($1::text[])", keys
        )
    by_order = {r["order_id"]: r for r in rows}
    assert len(rows) == len(orders), f"{len(rows)} ledger entries for {len(orders)} acknowledged purchases"
    for a in acknowledged:
        row = by_order[a.purchase.order_id]
        assert row["n"] == 1 and row["id"] == a.entry_id and row["partner_id"] == a.till.partner_id
        assert row["points"] == a.points == a.purchase.points
        assert (row["purchases"], row["lots"], row["postings"], row["net"]) == (1, 1, 2, 0), dict(row)
    assert stored_keys == len(keys)


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def wallet_locked(db: Database, member_id: int) -> AsyncIterator[None]:
    """Holds the member's wallet row lock (as an operation on that member would) until exit."""
    async with connection(db) as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            locked = await conn.fetchval("SELECT 1 FROM wallets WHERE member_id = $1 FOR UPDATE", member_id)
            assert locked, f"member {member_id} has no wallet yet: earn once before locking it"
            yield
        finally:
            await transaction.rollback()


async def until_waiting_for_the_lock(db: Database) -> None:
    """Returns once a gateway session of this database waits for a lock (the held wallet row)."""
    deadline = time.monotonic() + 10
    async with connection(db) as conn:
        while not await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND application_name = 'coalition'"
        ):
            assert time.monotonic() < deadline, "the earn never waited for the wallet lock"
            await asyncio.sleep(0.02)


async def earns_for_order(db: Database, order_id: str) -> int:
    async with connection(db) as conn:
        return await conn.fetchval("SELECT count(*) FROM journal_entries WHERE order_id = $1", order_id)


async def till_with_a_wallet(db: Database, base: str) -> Till:
    """One till whose member has earned once, so the wallet row an earn locks exists."""
    till = (await seed_tills(db, base, partners=1, tills=1))[0]
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        response = await client.post(**purchase_request(till, new_purchase()))
    assert acknowledgement(response) is not None, response.text
    return till
