"""Live balances for this process's subscribers: one LISTEN connection, one read per burst.

`live.notify` sends a small notification from every committing points move. Each gateway process
runs one `BalanceFeed`: one dedicated asyncpg connection LISTENing on `live.CHANNEL` (reconnecting
whenever it is lost), and the subscriptions of this process by member. A notification for a
member nobody here watches costs a JSON parse and a dict lookup. For watched members the feed
marks them due and one flushing task reads the balances of every due member in one query
(`queries.balances`) and hands each subscriber the result. Notifications arriving while a read is
in flight only mark their member due again, so a burst of moves on one member costs at most two
reads, however many subscribers watch it; and each subscriber keeps only the latest balance, so a
slow client is never queued more than one event behind.

Notifications sent while the connection is down are lost; on reconnecting, the feed reads every
watched member's balance again and sends it with reason RESYNC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.ledger import queries
from services.ledger.live import CHANNEL, BalanceChangeReason, BalanceNotice
from shared import clock, sql
from shared.database import Database, _asyncpg_dsn

log = logging.getLogger("coalition.ledger.balance_feed")
APPLICATION_NAME = "coalition-balance-listener"


@dataclass(frozen=True)
class BalanceEvent:
    """A member's balance right after a move (or several coalesced), and why it moved last."""

    member_id: int
    balance: queries.Balance
    reason: BalanceChangeReason
    occurred_at: datetime


class Subscription:
    """One subscriber's mailbox: the latest event not yet taken (older ones are superseded)."""

    def __init__(self, member_id: int) -> None:
        self.member_id = member_id
        self._latest: BalanceEvent | None = None
        self._ready = asyncio.Event()

    def offer(self, event: BalanceEvent) -> None:
        self._latest = event
        self._ready.set()

    async def next(self) -> BalanceEvent:
        await self._ready.wait()
        self._ready.clear()
        event = self._latest
        assert event is not None
        self._latest = None
        return event


class BalanceFeed:
    """This process's LISTEN connection on the balance channel and its subscriptions."""

    def __init__(self, db: Database, *, retry_seconds: float = 1.0, health_check_seconds: float = 15.0):
        self.db = db
        self.dsn, self.connect_kwargs = _asyncpg_dsn(db.url)
        self.retry_seconds = retry_seconds
        self.health_check_seconds = health_check_seconds
        self.listening = asyncio.Event()
        self.connections = 0
        self.reads = 0  # balance reads made, for tests and the benchmark
        self._subscribers: dict[int, set[Subscription]] = {}
        self._due: dict[int, BalanceNotice] = {}  # member -> latest notice not read yet
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, wait_seconds: float = 5.0) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="balance-feed-listener"),
            asyncio.create_task(self._flush_forever(), name="balance-feed-flusher"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), wait_seconds)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    @contextlib.asynccontextmanager
    async def subscribe(self, member_id: int) -> AsyncIterator[Subscription]:
        """A subscription to the member's balance for as long as the block runs."""
        subscription = Subscription(member_id)
        self._subscribers.setdefault(member_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subs = self._subscribers.get(member_id)
            if subs is not None:
                subs.discard(subscription)
                if not subs:
                    del self._subscribers[member_id]

    async def current(self, member_id: int) -> BalanceEvent:
        """The member's balance now, as a subscription's first event."""
        async with sql.connection(self.db) as conn:
            found = await queries.balances(conn, [member_id])
        return BalanceEvent(member_id, found[member_id], BalanceChangeReason.CURRENT, clock.now())

    def _heard(self, conn: object, pid: int, channel: str, payload: str) -> None:
        try:
            notice = BalanceNotice.parse(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable balance notification %r", payload)
            return
        if notice.member_id in self._subscribers:
            self._due[notice.member_id] = notice
            self._wake.set()

    def _resync(self) -> None:
        now = clock.now()
        for member_id in self._subscribers:
            self._due[member_id] = BalanceNotice(member_id, BalanceChangeReason.RESYNC, now)
        if self._due:
            self._wake.set()

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            due, self._due = self._due, {}
            if not due:
                continue
            try:
                await self._flush(due)
            except Exception:  # a failed read must not end the feed: the next move retries
                log.exception("reading balances for %d members failed", len(due))

    async def _flush(self, due: dict[int, BalanceNotice]) -> None:
        watched = [m for m in due if m in self._subscribers]
        if not watched:
            return
        async with sql.connection(self.db) as conn:
            found = await queries.balances(conn, watched)
        self.reads += 1
        for member_id in watched:
            notice = due[member_id]
            event = BalanceEvent(member_id, found[member_id], notice.reason, notice.occurred_at)
            for subscription in tuple(self._subscribers.get(member_id, ())):
                subscription.offer(event)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_once()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("balance feed lost its connection (%r); reconnecting", exc)
            await asyncio.sleep(self.retry_seconds)

    async def _listen_once(self) -> None:
        conn = await asyncpg.connect(
            self.dsn,
            **self.connect_kwargs,
            timeout=10,
            server_settings={"application_name": APPLICATION_NAME},
        )
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self._heard)
            self.connections += 1
            self.listening.set()
            if self.connections > 1:  # what was sent while nobody listened went unheard
                log.info("balance feed reconnected")
                self._resync()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.health_check_seconds)
                if not lost.is_set():  # a peer gone silently only shows when asked something
                    await conn.execute("SELECT 1", timeout=5)
        finally:
            self.listening.clear()
            conn.terminate()
