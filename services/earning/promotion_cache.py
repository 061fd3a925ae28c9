"""Promotions kept per process, invalidated across processes by LISTEN/NOTIFY, as rules are
(`cache`: the same generation guard against a load racing a change, the same forget-all on
reconnect).

Keyed by partner id, the coalition's promotions under key 0: a purchase at a partner reads its own
key and key 0, so a change to a coalition promotion (notice payload "0") forgets them for every
partner at once. Only promotions not archived are kept; their `spent_points` is what it was when
loaded and is never trusted: budgets are read and reserved in the earn's decide path
(`promotion_awards`).
"""

from __future__ import annotations

import logging
import weakref

from services.earning.promotions import COLUMNS, Promotion
from shared.database import Database
from shared.listening import Listener, Subscription
from shared.sql import DbConnection, Sql

log = logging.getLogger("coalition.earning.promotion_cache")

CHANNEL = "coalition_promotions"
COALITION = 0
LOAD = Sql(
    f"SELECT {COLUMNS} FROM promotions WHERE archived_at IS NULL"
    " AND partner_id IS NOT DISTINCT FROM CAST(NULLIF(CAST(:p AS bigint), 0) AS bigint) ORDER BY id"
)
NOTIFY = Sql("SELECT pg_notify(:channel, CAST(CAST(:p AS bigint) AS text))")


def key_of(partner_id: int | None) -> int:
    return COALITION if partner_id is None else partner_id


async def notify_changed(conn: DbConnection, partner_id: int | None) -> None:
    """In the changing transaction: delivered at commit, or never."""
    await NOTIFY.fetchval(conn, channel=CHANNEL, p=key_of(partner_id))


class PromotionsCache:
    """One per Database (per process): key (partner id, 0 for the coalition) -> promotions."""

    def __init__(self) -> None:
        self._promotions: dict[int, tuple[Promotion, ...]] = {}
        self._generation: dict[int, int] = {}
        self._epoch = 0
        self.loads = 0

    def peek(self, key: int) -> tuple[Promotion, ...] | None:
        return self._promotions.get(key)

    async def load(self, conn: DbConnection, key: int, time_zone: str) -> tuple[Promotion, ...]:
        found = self._promotions.get(key)
        if found is not None:
            return found
        generation, epoch = self._generation.get(key, 0), self._epoch
        self.loads += 1
        rows = await LOAD.fetch(conn, p=key)
        loaded = tuple(Promotion.of(r, time_zone) for r in rows)
        if self._generation.get(key, 0) == generation and self._epoch == epoch:
            self._promotions[key] = loaded
        return loaded

    def forget(self, key: int) -> None:
        self._generation[key] = self._generation.get(key, 0) + 1
        self._promotions.pop(key, None)

    def on_changed(self, payload: str) -> None:
        try:
            key = int(payload)
        except ValueError:
            log.warning("unreadable promotions notification %r: forgetting every promotion", payload)
            self.on_reconnect()
            return
        self.forget(key)

    def on_reconnect(self) -> None:
        self._epoch += 1
        self._promotions.clear()


_caches: weakref.WeakKeyDictionary[Database, PromotionsCache] = weakref.WeakKeyDictionary()


def promotions_cache(db: Database) -> PromotionsCache:
    found = _caches.get(db)
    if found is None:
        found = _caches[db] = PromotionsCache()
    return found


async def subscribe(listener: Listener, db: Database) -> Subscription:
    found = promotions_cache(db)
    return await listener.subscribe(CHANNEL, found.on_changed, on_reconnect=found.on_reconnect)
