"""A member's right to erasure, the members' half: personal data gone, the number kept.

The ledger's `services.ledger.erasure.erase_member` runs the whole erasure in one transaction:
it forfeits the points, then calls `erase_personal_data` here on the same connection. What goes:
the email, the password (hash and date), every link to a partner with the partner's customer
ref, and whatever one-time codes the member had (`revoke_member_codes`). What stays: the row, its
id and member number (the opaque key the books are kept under), created_at, and erased_at.

Every process caches "member at partner" answers (`service.cached_member_at_partner`); the
erasing transaction sends `pg_notify(CHANNEL, member_number)`, which PostgreSQL delivers only
once it commits, and each gateway's `MemberCacheListener` drops the member's entries as it hears
it. The erasing process drops its own entries after the commit (`forget_member`), so nothing
depends on the listener for the caller's next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

import asyncpg

from shared.cache import TimedCache
from shared.database import Database, _asyncpg_dsn
from shared.sql import DbConnection, Sql

log = logging.getLogger("coalition.members.erasure")

CHANNEL = "coalition_member_erased"

LOCK_MEMBER = Sql("SELECT id, erased_at FROM members WHERE member_number = :n FOR UPDATE")
ERASE = Sql(
    "UPDATE members SET email = NULL, password_hash = NULL, password_changed_at = NULL,"
    " require_code_to_spend = false, erased_at = :at WHERE id = :id"
)
UNLINK_ALL = Sql("DELETE FROM enrollments WHERE member_id = :id")
NOTIFY = Sql("SELECT pg_notify(:channel, :number)")


async def lock_member(conn: DbConnection, member_number: str) -> tuple[int, datetime | None] | None:
    """The member's id and erased_at, the row locked against a concurrent erasure or login
    change; None for an unknown number."""
    row = await LOCK_MEMBER.fetchrow(conn, n=member_number)
    return (row["id"], row["erased_at"]) if row else None


DELETE_CODES = Sql(
    "WITH s AS (DELETE FROM spend_codes WHERE member_id = :id)"
    " DELETE FROM activation_codes WHERE member_id = :id"
)


async def revoke_member_codes(conn: DbConnection, member_id: int) -> None:
    """In the erasing transaction: the member's spend and activation codes go. Their tokens are
    identity's: the ledger's erasure revokes them once this transaction has committed."""
    await DELETE_CODES.execute(conn, id=member_id)


async def erase_personal_data(conn: DbConnection, member_id: int, member_number: str, at: datetime) -> None:
    """In the caller's transaction: the personal data goes, the number stays; every process is
    told to forget the member once the transaction commits."""
    await ERASE.execute(conn, at=at, id=member_id)
    await UNLINK_ALL.execute(conn, id=member_id)
    await revoke_member_codes(conn, member_id)
    await NOTIFY.execute(conn, channel=CHANNEL, number=member_number)


def forget_member(cache: TimedCache, member_number: str) -> int:
    """Drops every cached answer about the member (keys `("member", number, partner_id)`)."""

    def about(key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 3 and key[:2] == ("member", member_number)

    return cache.forget_where(about)


class MemberCacheListener:
    """One LISTEN connection per gateway process: drops an erased member from the process's
    member cache the moment the erasure commits. Reconnects when the connection is lost; while it
    is down, MEMBER_CACHE_SECONDS bounds how long an entry can outlive an erasure (and erasure
    removes the links, so a stale entry at most lets an earn reach the ledger, which then finds
    no member: the ledger re-reads the member inside every spend)."""

    def __init__(self, db: Database, *, retry_seconds: float = 1.0, health_check_seconds: float = 15.0):
        self.db = db
        self.dsn, self.connect_kwargs = _asyncpg_dsn(db.url)
        self.retry_seconds = retry_seconds
        self.health_check_seconds = health_check_seconds
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, wait_seconds: float = 5.0) -> None:
        self._task = asyncio.create_task(self._run(), name="member-cache-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), wait_seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _erased(self, conn: object, pid: int, channel: str, member_number: str) -> None:
        forget_member(self.db.cache, member_number)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_once()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("member cache listener lost its connection (%r); reconnecting", exc)
            await asyncio.sleep(self.retry_seconds)

    async def _listen_once(self) -> None:
        conn = await asyncpg.connect(self.dsn, **self.connect_kwargs, timeout=10)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self._erased)
            self.listening.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.health_check_seconds)
                if not lost.is_set():
                    await conn.execute("SELECT 1", timeout=5)
        finally:
            self.listening.clear()
            conn.terminate()
