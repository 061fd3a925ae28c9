"""One LISTEN connection per process and database, shared by every service that must hear at once
of changes committed anywhere.

DESIGN.md has live updates cross processes through PostgreSQL LISTEN/NOTIFY, never process memory.
Several services need that (identity's revocations, members' unlinks and erasures, the ledger's
live balances); a `Listener` owns the one dedicated asyncpg connection of a process (application
name APPLICATION_NAME) and services register handlers for their channels, before or after it
starts:

    listener = Listener(db)
    await listener.subscribe(CHANNEL, on_payload, on_reconnect=forget_everything)
    await listener.start()

What a subscriber can rely on:

- `on_payload(payload)` runs in the event loop for each notification on its channel, in the order
  PostgreSQL delivers them (commit order). It must be quick and must not block; one that raises is
  logged and does not stop the others.
- Notifications sent while the connection is down are lost. So `on_reconnect()` runs each time the
  channel comes to be heard on a new connection (the first one included, and at `subscribe` on a
  running listener), always after LISTEN is in force: a subscriber that re-reads (or forgets) its
  state there misses nothing.
- A lost connection (a terminated backend, a restarting database) is noticed at once; a peer gone
  silently (a network cut) by a `SELECT 1`, every `health_check_seconds`, that gets no answer
  in `health_timeout_seconds`. Either way the listener reconnects every `retry_seconds`
  until the database answers.

"Applied everywhere": a handler may return a notice id (which the sender put in the payload, see
`new_notice`) to say it has applied the change; the listener acknowledges it on ACK_CHANNEL. After
the commit that sent the notice, `applied_everywhere(db, notice)` waits until every listening
backend of the database (counted in pg_stat_activity by APPLICATION_NAME) has acknowledged it, or
until the timeout: a listener that died without its backend noticing yet never answers, and the
subscriber's own fallback (a periodic re-read, a cache lifetime) bounds it. Every process's
listener is expected to carry the same acknowledging subscriptions (the gateway's lifespan makes
them all); one without the handler never acknowledges, and the waiter runs into the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from shared import sql
from shared.database import Database, _asyncpg_dsn

log = logging.getLogger("coalition.listening")

APPLICATION_NAME = "coalition-listener"
ACK_CHANNEL = "coalition_applied"
# How long an operation waits for every listener's acknowledgement; far above what it takes
# (milliseconds), short enough that a dead listener costs a caller one second, not a hang.
PROPAGATION_TIMEOUT_SECONDS = 1.0
LISTENING_BACKENDS = sql.Sql(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = :name"
)
_REMEMBERED = 1000  # notices whose acknowledgements a listener keeps, for a waiter arriving late
_LOST = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

OnPayload = Callable[[str], str | None]  # returns the notice id it applied, if any
OnReconnect = Callable[[], object]  # its result is ignored

# The running listeners of this process (normally one), by database URL.
_running: dict[str, set[Listener]] = {}


def new_notice() -> str:
    """A fresh notice id, for the sender to put in its payload and give to `applied_everywhere`."""
    return secrets.token_hex(8)


@dataclass(eq=False)
class Subscription:
    """One handler on one channel (`Listener.unsubscribe` takes it back)."""

    channel: str
    on_payload: OnPayload
    on_reconnect: OnReconnect | None
    caught_up_on: int = 0  # the connection it was last told to catch up on (0: none yet)


class Listener:
    """This process's LISTEN connection to one database, carrying every subscriber's channel."""

    def __init__(
        self,
        db: Database,
        *,
        retry_seconds: float = 1.0,
        health_check_seconds: float = 15.0,
        health_timeout_seconds: float = 5.0,
        application_name: str = APPLICATION_NAME,
        propagation_timeout_seconds: float = PROPAGATION_TIMEOUT_SECONDS,
    ):
        self.db = db
        self.url = db.url
        self.dsn, self.connect_kwargs = _asyncpg_dsn(db.url)
        self.retry_seconds = retry_seconds
        self.health_check_seconds = health_check_seconds  # how often it asks the peer
        self.health_timeout_seconds = health_timeout_seconds  # how long an answer may take
        self.application_name = application_name
        self.propagation_timeout_seconds = propagation_timeout_seconds  # bounds `applied_everywhere`
        self.listening = asyncio.Event()  # set while LISTEN is in force
        self.connections = 0  # how many times it has (re)connected, for logs and tests
        self.backend_pid: int | None = None  # its server process, while connected
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._conn: asyncpg.Connection | None = None
        self._in_force: set[str] = set()  # channels LISTENed on the current connection
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._task: asyncio.Task[None] | None = None
        self._acks: OrderedDict[str, set[int]] = OrderedDict()  # notice -> backends that applied it
        self._waiting: dict[str, tuple[int, asyncio.Future[None]]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def subscribe(
        self, channel: str, on_payload: OnPayload, *, on_reconnect: OnReconnect | None = None
    ) -> Subscription:
        """Hear `channel` from now on. On a running listener this returns once LISTEN is in force
        (and `on_reconnect` has run); before `start`, the first connection takes it up."""
        subscription = Subscription(channel, on_payload, on_reconnect)
        self._subscriptions.setdefault(channel, []).append(subscription)
        async with self._lock:
            conn = self._conn
            if conn is None:
                return subscription
            try:
                if channel not in self._in_force:
                    await conn.add_listener(channel, self._deliver)
                    self._in_force.add(channel)
            except _LOST as exc:  # the reconnection takes it up, and catches it up
                log.warning("could not LISTEN on %s yet (%r); the next connection will", channel, exc)
                return subscription
            self._catch_up(subscription)
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        """Stop handing `subscription` anything; the channel is UNLISTENed once nobody is left."""
        subs = self._subscriptions.get(subscription.channel, [])
        if subscription in subs:
            subs.remove(subscription)
        if subs:
            return
        self._subscriptions.pop(subscription.channel, None)
        async with self._lock:
            if self._conn is not None and subscription.channel in self._in_force:
                self._in_force.discard(subscription.channel)
                with contextlib.suppress(*_LOST):
                    await self._conn.remove_listener(subscription.channel, self._deliver)

    async def start(self, wait_seconds: float = 5.0) -> None:
        """Start listening; wait (bounded) for the first LISTEN so a gateway that starts serving
        already hears changes. If the database does not answer in time, the subscribers'
        fallbacks cover for the listener, which keeps trying."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="listener")
            _running.setdefault(self.url, set()).add(self)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), wait_seconds)

    async def stop(self) -> None:
        _running.get(self.url, set()).discard(self)
        tasks = [*self._sending, *([self._task] if self._task is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    def acknowledgements(self, notice: str) -> frozenset[int]:
        """The backends heard acknowledging `notice` (among the last _REMEMBERED notices)."""
        return frozenset(self._acks.get(notice, ()))

    async def acknowledged(self, notice: str, expected: int, *, bound: str = "") -> bool:
        """True once `expected` backends have acknowledged `notice`; False (logged, naming what
        `bound`s the others) when `propagation_timeout_seconds` pass first."""
        if len(self._acks.get(notice, ())) >= expected:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[notice] = (expected, waiter)
        try:
            async with asyncio.timeout(self.propagation_timeout_seconds):
                await waiter
            return True
        except TimeoutError:
            log.warning(
                "notice %s applied by %d of %d listening processes in time; %s",
                notice,
                len(self._acks.get(notice, ())),
                expected,
                bound or "the subscribers' fallbacks cover the others",
            )
            return False
        finally:
            self._waiting.pop(notice, None)

    def _deliver(self, conn: object, pid: int, channel: str, payload: str) -> None:
        notices: set[str] = set()
        failed = False
        for subscription in tuple(self._subscriptions.get(channel, ())):
            try:
                notice = subscription.on_payload(payload)
            except Exception:  # one broken handler must not deafen the others
                log.exception("a handler on %s failed on %r", channel, payload)
                failed = True
                continue
            if notice is not None:
                notices.add(notice)
        if failed:  # not applied by everyone here: no acknowledgement, the waiter times out
            return
        for notice in notices:
            task = asyncio.get_running_loop().create_task(self._send_ack(notice))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send_ack(self, notice: str) -> None:
        try:
            async with self._lock:
                if self._conn is not None:
                    await self._conn.execute("SELECT pg_notify($1, $2)", ACK_CHANNEL, notice)
        except _LOST as exc:
            log.warning("could not acknowledge notice %s: %r", notice, exc)

    def _acknowledgement(self, conn: object, pid: int, channel: str, notice: str) -> None:
        acks = self._acks.setdefault(notice, set())
        acks.add(pid)
        if len(self._acks) > _REMEMBERED:
            self._acks.popitem(last=False)
        waiting = self._waiting.get(notice)
        if waiting is not None and len(acks) >= waiting[0] and not waiting[1].done():
            waiting[1].set_result(None)

    def _catch_up(self, subscription: Subscription) -> None:
        """Tell a subscriber its channel is heard on a new connection (once per connection)."""
        if subscription.caught_up_on == self.connections:
            return
        subscription.caught_up_on = self.connections
        if subscription.on_reconnect is not None:
            try:
                subscription.on_reconnect()
            except Exception:
                log.exception("catching up a subscriber of %s failed", subscription.channel)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_once()
            except _LOST as exc:
                log.warning("listener lost its connection (%r); reconnecting", exc)
            except Exception:  # a bug must not leave the process deaf for good
                log.exception("listener failed; reconnecting")
            await asyncio.sleep(self.retry_seconds)

    async def _listen_once(self) -> None:
        conn = await asyncpg.connect(
            self.dsn,
            **self.connect_kwargs,
            timeout=10,
            server_settings={"application_name": self.application_name},
        )
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            async with self._lock:
                await conn.add_listener(ACK_CHANNEL, self._acknowledgement)
                for channel in tuple(self._subscriptions):
                    await conn.add_listener(channel, self._deliver)
                    self._in_force.add(channel)
                self._conn = conn
                self.connections += 1
                self.backend_pid = conn.get_server_pid()
                # What was sent while nobody listened went unheard: each subscriber catches up.
                for channel in tuple(self._in_force):
                    for subscription in tuple(self._subscriptions.get(channel, ())):
                        self._catch_up(subscription)
            self.listening.set()
            if self.connections > 1:
                log.info("listener reconnected (backend %s)", self.backend_pid)
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.health_check_seconds)
                if not lost.is_set():  # a peer gone silently only shows when asked something
                    async with self._lock:
                        await conn.execute("SELECT 1", timeout=self.health_timeout_seconds)
        finally:
            self.listening.clear()
            self._conn = None
            self._in_force = set()
            self.backend_pid = None
            conn.terminate()


def running_listener(db: Database) -> Listener | None:
    """A listener of this process on `db` that is connected now, if any: one made with this very
    Database first (a process holding two, as tests do, asks the one it means), else any on the
    same database URL."""
    connected = [one for one in _running.get(db.url, ()) if one.listening.is_set()]
    return next((one for one in connected if one.db is db), connected[0] if connected else None)


async def applied_everywhere(db: Database, notice: str, *, bound: str = "") -> bool:
    """After the commit that sent `notice`: wait until every listening backend of the database has
    acknowledged applying it, or the listener's `propagation_timeout_seconds` (logged, naming the
    `bound` that covers the others).
    Needs a listener in this process to hear the acknowledgements: without one (the command line)
    it returns at once. True when everyone acknowledged."""
    listener = running_listener(db)
    if listener is None:
        return False
    async with sql.connection(db) as conn:
        expected = await LISTENING_BACKENDS.fetchval(conn, name=listener.application_name)
    return await listener.acknowledged(notice, int(expected or 0), bound=bound)
