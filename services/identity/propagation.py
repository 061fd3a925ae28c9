"""How every gateway process learns at once that tokens stopped being good.

Verification keeps no database work on the hot path (`verifier`), so each process holds in memory
what makes a valid token invalid: revoked token ids, disabled clients, rotated secrets. Process
memory is not shared, so a change crosses processes through PostgreSQL LISTEN/NOTIFY, as
DESIGN.md asks of live updates:

- the transaction that revokes a token (or every token of a member), disables a client or
  rotates a secret also runs `pg_notify(CHANNEL, payload)`; PostgreSQL delivers it only if and
  when that transaction commits, and in commit order;
- each gateway process holds one dedicated connection (`ChangeListener`, started in the app's
  lifespan) that LISTENs on CHANNEL and applies each payload to its verifier as it arrives;
- notifications sent while a listener is not connected are lost, so on every (re)connection the
  verifier re-reads everything before the next request; and the periodic re-read every
  REVOCATION_CACHE_SECONDS stays as the bound when the listener is down (a restarting database, a
  network cut it has not noticed yet: a health query every `health_check_seconds` finds those).

The payload names the client and its whole state after the change (not "something changed"), so a
listener applies it without a query, and a later notification of the same client supersedes it.

"At once" is made exact for the caller: having applied a change, each listener acknowledges it on
ACK_CHANNEL, and the operation that made the change answers only once every listening backend of
the database has acknowledged (`applied_everywhere`, at most PROPAGATION_TIMEOUT_SECONDS). So when
`disableClient` returns, every connected gateway process already refuses the client's tokens; the
next request, to whichever gateway, is refused. Without that wait a request sent right after the
answer to another gateway could still be served (measured: 3 in 50). The cost is one small
notification per listener and change, for changes an admin or a revocation makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.models import OAuthClient
from shared.database import Database, _asyncpg_dsn

if TYPE_CHECKING:
    from services.identity.verifier import TokenVerifier

log = logging.getLogger("coalition.identity.propagation")

CHANNEL = "coalition_identity"
ACK_CHANNEL = "coalition_identity_applied"
APPLICATION_NAME = "coalition-identity-listener"
# The periodic re-read's default bound: a listener that has not answered by then is not listening.
PROPAGATION_TIMEOUT_SECONDS = 1.0
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_LISTENING_BACKENDS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = :name"
)
_REMEMBERED = 1000  # notices whose acknowledgements a listener keeps, for a waiter arriving late

# The running listeners of this process (normally one), by database URL.
_listeners: dict[str, set[ChangeListener]] = {}


async def _notify(session: AsyncSession, payload: dict[str, Any]) -> str:
    """Send `payload` when the session's transaction commits; returns its notice id."""
    notice = secrets.token_hex(8)
    await session.execute(_NOTIFY, {"channel": CHANNEL, "payload": json.dumps({**payload, "notice": notice})})
    return notice


async def notify_client(session: AsyncSession, client: OAuthClient) -> str:
    """In the transaction that changed `client`: its state, for every listener once committed.
    Returns the notice id for `applied_everywhere`."""
    return await _notify(
        session,
        {
            "client_id": client.client_id,
            "disabled": client.disabled_at is not None,
            "secret_version": client.secret_version,
        },
    )


async def notify_revoked(session: AsyncSession, jti: str, expires_at: float) -> str:
    """In the transaction that revoked token `jti` (its `exp` says how long to remember it).
    Returns the notice id for `applied_everywhere`."""
    return await _notify(session, {"revoked": jti, "exp": expires_at})


async def notify_member_revoked(session: AsyncSession, member_id: int, before: float) -> str:
    """In the transaction that revoked every token of a member issued at or before `before`."""
    return await _notify(session, {"member": member_id, "before": before})


async def applied_everywhere(db: Database, notice: str) -> None:
    """After the commit that sent `notice`: wait until every listening backend of the database has
    acknowledged applying it, or PROPAGATION_TIMEOUT_SECONDS (a listener that has died without its
    backend noticing yet never answers; the periodic re-read bounds it). Needs a listener in this
    process to hear the acknowledgements: without one (the command line) it returns at once."""
    listener = next((one for one in _listeners.get(db.url, ()) if one.listening.is_set()), None)
    if listener is None:
        return
    async with db.sessions() as session:
        expected = await session.scalar(_LISTENING_BACKENDS, {"name": APPLICATION_NAME})
    await listener.acknowledged(notice, int(expected or 0))


def apply(verifier: TokenVerifier, payload: str) -> str | None:
    """One notification applied to a verifier; returns its notice id. A payload it cannot read
    makes the verifier re-read everything."""
    try:
        change = json.loads(payload)
        if "revoked" in change:
            verifier.revoked_locally(str(change["revoked"]), float(change["exp"]))
        elif "member" in change:
            verifier.member_revoked(int(change["member"]), float(change["before"]))
        else:
            verifier.client_changed(
                str(change["client_id"]),
                disabled=bool(change["disabled"]),
                secret_version=int(change["secret_version"]),
            )
    except (ValueError, TypeError, KeyError, AttributeError):
        log.warning("unreadable identity notification %r: re-reading everything", payload)
        verifier.refresh_soon()
        return None
    notice = change.get("notice")
    return notice if isinstance(notice, str) else None


class ChangeListener:
    """One LISTEN connection per process, feeding one verifier; reconnects whenever it is lost."""

    def __init__(
        self,
        db: Database,
        verifier: TokenVerifier,
        *,
        retry_seconds: float = 1.0,
        health_check_seconds: float = 15.0,
    ):
        self.dsn, self.connect_kwargs = _asyncpg_dsn(db.url)
        self.verifier = verifier
        self.retry_seconds = retry_seconds
        self.health_check_seconds = health_check_seconds
        self.listening = asyncio.Event()  # set while LISTEN is in force
        self.connections = 0  # how many times it has (re)connected, for logs and tests
        self.backend_pid: int | None = None  # its server process, while connected
        self._db_url = db.url
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._conn_lock = asyncio.Lock()  # one statement at a time on the connection
        self._acks: OrderedDict[str, set[int]] = OrderedDict()  # notice -> backends that applied it
        self._waiting: dict[str, tuple[int, asyncio.Future[None]]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def start(self, wait_seconds: float = 5.0) -> None:
        """Start listening; wait (bounded) for the first LISTEN so a gateway that starts serving
        already hears changes. If the database does not answer in time the periodic re-read
        covers for the listener, which keeps trying."""
        self._task = asyncio.create_task(self._run(), name="identity-change-listener")
        _listeners.setdefault(self._db_url, set()).add(self)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), wait_seconds)

    async def stop(self) -> None:
        _listeners.get(self._db_url, set()).discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def acknowledged(self, notice: str, expected: int) -> None:
        """Return once `expected` backends have acknowledged `notice`, or after the timeout."""
        if len(self._acks.get(notice, ())) >= expected:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[notice] = (expected, waiter)
        try:
            async with asyncio.timeout(PROPAGATION_TIMEOUT_SECONDS):
                await waiter
        except TimeoutError:
            log.warning(
                "notice %s applied by %d of %d listening processes in time; the periodic re-read"
                " covers the others",
                notice,
                len(self._acks.get(notice, ())),
                expected,
            )
        finally:
            self._waiting.pop(notice, None)

    def _changed(self, conn: object, pid: int, channel: str, payload: str) -> None:
        notice = apply(self.verifier, payload)
        if notice is not None:  # applied: say so, for whoever waits on `applied_everywhere`
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
            self._acks.popitem(last=False)
        waiting = self._waiting.get(notice)
        if waiting is not None and len(acks) >= waiting[0] and not waiting[1].done():
            waiting[1].set_result(None)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_once()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("identity change listener lost its connection (%r); reconnecting", exc)
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
            # Changes committed while nobody listened were not heard: read them all now.
            self.verifier.refresh_soon()
            self.connections += 1
            self.backend_pid = conn.get_server_pid()
            self.listening.set()
            if self.connections > 1:
                log.info("identity change listener reconnected (backend %s)", self.backend_pid)
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.health_check_seconds)
                if not lost.is_set():  # a peer gone silently only shows when asked something
                    async with self._conn_lock:
                        await conn.execute("SELECT 1", timeout=5)
        finally:
            self.listening.clear()
            self._conn = None
            self.backend_pid = None
            conn.terminate()
