"""Live balances for this process's subscribers: one channel on the process's listener, one read
per burst.

`live.notify` sends a small notification from every committing points move. Each gateway process
runs one `BalanceFeed`: `live.CHANNEL` on the process's one LISTEN connection (`shared.listening`,
which reconnects whenever it is lost), and the subscriptions of this process by member. A notification for a
member nobody here watches costs a JSON parse and a dict lookup. For watched members the feed
marks them due and one flushing task reads the balances of every due member in one query
(`queries.balances`) and hands each subscriber the result. Notifications arriving while a read is
in flight only mark their member due again, so a burst of moves on one member costs at most two
reads, however many subscribers watch it; and each subscriber keeps only the latest balance, so a
slow client is never queued more than one event behind.

Notifications sent while the connection is down are lost; on reconnecting, the feed reads every
watched member's balance again and sends it with reason RESYNC (the listener's `on_reconnect`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from services.ledger import queries
from services.ledger.live import CHANNEL, BalanceChangeReason, BalanceNotice
from shared import clock, sql
from shared.database import Database
from shared.listening import Listener
from shared.listening import Subscription as ChannelSubscription

log = logging.getLogger("coalition.ledger.balance_feed")


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
    """This process's subscriptions to balances, fed by the balance channel of its listener."""

    def __init__(self, db: Database, listener: Listener):
        self.db = db
        self.listener = listener
        self.reads = 0  # balance reads made, for tests and the benchmark
        self._subscribers: dict[int, set[Subscription]] = {}
        self._due: dict[int, BalanceNotice] = {}  # member -> latest notice not read yet
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._channel: ChannelSubscription | None = None

    async def start(self) -> None:
        """Hear the balance channel (now, or once the listener connects) and start reading."""
        self._flusher = asyncio.create_task(self._flush_forever(), name="balance-feed-flusher")
        self._channel = await self.listener.subscribe(CHANNEL, self._heard, on_reconnect=self._resync)

    async def stop(self) -> None:
        if self._channel is not None:
            await self.listener.unsubscribe(self._channel)
            self._channel = None
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None

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

    def _heard(self, payload: str) -> None:
        try:
            notice = BalanceNotice.parse(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable balance notification %r", payload)
            return
        if notice.member_id in self._subscribers:
            self._due[notice.member_id] = notice
            self._wake.set()

    def _resync(self) -> None:
        """The channel is heard on a new connection: what moved meanwhile went unheard, so every
        watched member is read again (RESYNC). At the first connection nobody watches yet."""
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
