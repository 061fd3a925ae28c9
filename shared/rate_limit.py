"""Sliding-window limits kept in PostgreSQL, so every gateway process counts the same events.

An event (a lookup of an unknown member number, a wrong activation code) is a row in
`rate_limit_hits`. A key is blocked while the window holds `limit` of its events; it is free
again once enough of them have aged out of the window. Recording an event also deletes that
key's events older than the window, so the table holds at most about `limit` rows per key.

Checking must not cost a query per request on hot paths (every earn names a member), so each
process keeps the set of blocked keys of a bucket (per database, in `Database.cache`), re-read at
most every `refresh_seconds`; an event recorded through this process blocks its key here at
once. Another process learns of a block within `refresh_seconds`: what a client can get past the
limit is bounded by its request rate times that, per process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, DateTime, Identity, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared import clock, sql
from shared.database import Database
from shared.errors import AccessError
from shared.models import Base


class RateLimitHit(Base):
    __tablename__ = "rate_limit_hits"
    __table_args__ = (
        Index("ix_rate_limit_hits_bucket_key_at", "bucket", "key", "at"),
        # Who is over the limit in a bucket's window (BLOCKED): the recent hits, not all of them.
        Index("ix_rate_limit_hits_bucket_at", "bucket", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    bucket: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RateLimited(AccessError):
    """Too many events of one kind from one caller; `retry_after` says when to try again."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
        self.extensions = {"code": self.code, "retryAfter": retry_after}


HIT = sql.Sql(
    "WITH gone AS (DELETE FROM rate_limit_hits WHERE bucket = :bucket AND key = :key AND at <= :since)"
    " INSERT INTO rate_limit_hits (bucket, key, at) VALUES (:bucket, :key, :now)"
)
# Per key with `limit` or more events in the window: when enough of them will have aged out to
# let the key through again (the (n - limit + 1)-th oldest event leaves the window).
BLOCKED = sql.Sql(
    "SELECT key, (array_agg(at ORDER BY at))[count(*) - CAST(:limit AS int) + 1] AS until_from"
    " FROM rate_limit_hits WHERE bucket = :bucket AND at > :since AND at <= :now"
    " GROUP BY key HAVING count(*) >= :limit"
)


@dataclass(frozen=True)
class SlidingWindow:
    bucket: str
    limit: int
    window: timedelta
    refresh_seconds: float = 1.0

    async def retry_after(self, db: Database, key: str) -> int | None:
        """Seconds until `key` may act again, or None when it is not blocked."""
        until = (await self._blocked(db)).get(key)
        if until is None:
            return None
        left = (until - clock.now()).total_seconds()
        return max(1, math.ceil(left)) if left > 0 else None

    async def refuse_if_blocked(self, db: Database, key: str, message: str) -> None:
        wait = await self.retry_after(db, key)
        if wait is not None:
            raise RateLimited(f"{message}; retry in {wait} s", wait)

    async def hit(self, db: Database, key: str) -> None:
        """Records one event for `key` in a statement of its own, committed at once (a refused
        request may roll its own transaction back; the event must count all the same)."""
        now = clock.now()
        async with sql.connection(db) as conn:
            await HIT.execute(conn, bucket=self.bucket, key=key, now=now, since=now - self.window)
            rows = await self._read(conn, now)
        (await self._blocked(db)).update(rows)

    async def _blocked(self, db: Database) -> dict[str, datetime]:
        """This process's copy of the blocked keys (key -> free again at), re-read when stale."""

        async def load() -> dict[str, datetime]:
            async with sql.connection(db) as conn:
                return await self._read(conn, clock.now())

        found = await db.cache.get_or_load(("rate-limit", self.bucket), self.refresh_seconds, load)
        assert found is not None
        return found

    async def _read(self, conn: sql.DbConnection, now: datetime) -> dict[str, datetime]:
        since = now - self.window
        rows = await BLOCKED.fetch(conn, bucket=self.bucket, limit=self.limit, since=since, now=now)
        return {r["key"]: r["until_from"] + self.window for r in rows}
