"""How every gateway process forgets at once a link that was undone.

`service.cached_member_at_partner` remembers, per process, that a member is linked to a partner:
the earn's hot path then skips a query. A link undone (`account.unlink_partner`) must leave every
process's memory before the unlinking call answers, or a till talking to another gateway could
still be served as if the member were linked. The pattern is identity's (`services/identity/
propagation.py`), on a channel of its own:

- the unlinking transaction runs `pg_notify(CHANNEL, …)`, delivered only if and when it commits;
- each gateway process holds one LISTEN connection (`LinkListener`, started in the app's lifespan)
  that forgets the named link and acknowledges on ACK_CHANNEL;
- the unlinking call waits until every listening backend has acknowledged (bounded by
  PROPAGATION_TIMEOUT_SECONDS), so when it returns every process has forgotten the link;
- a notice sent while a listener was disconnected is lost, so on every (re)connection the listener
  forgets every remembered link; MEMBER_CACHE_SECONDS bounds the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Hashable

import asyncpg

from shared import sql
from shared.database import Database, _asyncpg_dsn
from shared.sql import DbConnection

log = logging.getLogger("coalition.members.propagation")

CHANNEL = "coalition_members"
ACK_CHANNEL = "coalition_members_applied"
APPLICATION_NAME = "coalition-members-listener"
PROPAGATION_TIMEOUT_SECONDS = 1.0
LISTENING_BACKENDS = sql.Sql(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = :name"
)
_REMEMBERED = 1000

_listeners: dict[str, set[LinkListener]] = {}


def link_key(member_number: str, partner_id: int) -> tuple[str, str, int]:
    """The key `service.cached_member_at_partner` remembers a link under."""
    return ("member", member_number, partner_id)


def forget_link(db: Database, member_number: str, partner_id: int) -> None:
    db.cache.forget(link_key(member_number, partner_id))


def _is_link(key: Hashable) -> bool:
    return isinstance(key, tuple) and len(key) == 3 and key[0] == "member"


async def notify_unlinked(conn: DbConnection, member_number: str, partner_id: int) -> str:
    """In the unlinking transaction; returns the notice id for `applied_everywhere`."""
    notice = secrets.token_hex(8)
    payload = json.dumps({"member_number": member_number, "partner_id": partner_id, "notice": notice})
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
    return notice


async def applied_everywhere(db: Database, notice: str) -> None:
    """After the commit that sent `notice`: wait until every listening process has applied it
    (or the timeout). Without a listener in this process (the command line) it returns at once."""
    listener = next((one for one in _listeners.get(db.url, ()) if one.listening.is_set()), None)
    if listener is None:
        return
    async with sql.connection(db) as conn:
        expected = await LISTENING_BACKENDS.fetchval(conn, name=APPLICATION_NAME)
    await listener.acknowledged(notice, int(expected or 0))


class LinkListener:
    """One LISTEN connection per process, clearing that process's remembered links."""

    def __init__(self, db: Database, *, retry_seconds: float = 1.0, health_check_seconds: float = 15.0):
        self.db = db
        self.dsn, self.connect_kwargs = _asyncpg_dsn(db.url)
        self.retry_seconds = retry_seconds
        self.health_check_seconds = health_check_seconds
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._conn_lock = asyncio.Lock()
        self._acks: dict[str, set[int]] = {}
        self._waiting: dict[str, tuple[int, asyncio.Future[None]]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def start(self, wait_seconds: float = 5.0) -> None:
        self._task = asyncio.create_task(self._run(), name="members-link-listener")
        _listeners.setdefault(self.db.url, set()).add(self)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), wait_seconds)

    async def stop(self) -> None:
        _listeners.get(self.db.url, set()).discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def acknowledged(self, notice: str, expected: int) -> None:
        if len(self._acks.get(notice, ())) >= expected:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[notice] = (expected, waiter)
        try:
            async with asyncio.timeout(PROPAGATION_TIMEOUT_SECONDS):
                await waiter
        except TimeoutError:
            log.warning(
                "unlink notice %s not applied everywhere in time; MEMBER_CACHE_SECONDS bounds it", notice
            )
        finally:
            self._waiting.pop(notice, None)

    def _changed(self, conn: object, pid: int, channel: str, payload: str) -> None:
        try:
            change = json.loads(payload)
            forget_link(self.db, str(change["member_number"]), int(change["partner_id"]))
            notice = str(change["notice"])
        except (ValueError, TypeError, KeyError):
            log.warning("unreadable members notification %r: forgetting every link", payload)
            self.db.cache.forget_where(_is_link)
            return
        task = asyncio.get_running_loop().create_task(self._send_ack(notice))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_ack(self, notice: str) -> None:
        try:
            async with self._conn_lock:
                if self._conn is not None:
                    await self._conn.execute("SELECT pg_notify($1, $2)", ACK_CHANNEL, notice)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("could not acknowledge notice %s: %r", notice, exc)

    def _acknowledgement(self, conn: object, pid: int, channel: str, notice: str) -> None:
        acks = self._acks.setdefault(notice, set())
        acks.add(pid)
        if len(self._acks) > _REMEMBERED:
            self._acks.pop(next(iter(self._acks)))
        waiting = self._waiting.get(notice)
        if waiting is not None and len(acks) >= waiting[0] and not waiting[1].done():
            waiting[1].set_result(None)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_once()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("members link listener lost its connection (%r); reconnecting", exc)
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
            await conn.add_listener(ACK_CHANNEL, self._acknowledgement)
            await conn.add_listener(CHANNEL, self._changed)
            self._conn = conn
            self.db.cache.forget_where(_is_link)  # notices sent while nobody listened were lost
            self.listening.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.health_check_seconds)
                if not lost.is_set():
                    async with self._conn_lock:
                        await conn.execute("SELECT 1", timeout=5)
        finally:
            self.listening.clear()
            self._conn = None
            conn.terminate()
