"""Earn rules kept per process, invalidated across processes by LISTEN/NOTIFY.

The earn path never reads rules from the database: a partner's versions are loaded once (one
statement, also for a partner with none, which is remembered as empty) and kept until a change.
A change (create, update, archive) runs `notify_changed` in its own transaction: PostgreSQL
delivers `pg_notify(CHANNEL, partner id)` to every listening process if and when it commits, and
each process's `on_rules_changed` forgets that partner; the changing process forgets it at once
too. A notice sent while a process was not listening is lost, so `on_reconnect` forgets
everything. A load that raced with a change is not kept: each partner has a generation, bumped by
every notice, and a load stores its result only if the generation did not move meanwhile.

Every gateway hears CHANNEL on its one LISTEN connection (`subscribe`, from the gateway's
lifespan: shared/listening.py).
"""

from __future__ import annotations

import logging
import weakref

from services.earning.rules import PartnerRules, RuleVersion
from shared.database import Database
from shared.listening import Listener, Subscription
from shared.sql import DbConnection, Sql

log = logging.getLogger("coalition.earning.cache")

CHANNEL = "coalition_earning"
VERSIONS = Sql(
    "SELECT rule_id, id AS version_id, partner_id, effective_from, name, sku, category, multiplier,"
    " points_per_unit, min_spend, cap_per_purchase, cap_per_member_day, cap_per_member_month,"
    " valid_from, valid_until, archived FROM earn_rule_versions WHERE partner_id = :p"
)
NOTIFY = Sql("SELECT pg_notify(:channel, CAST(CAST(:p AS bigint) AS text))")


async def notify_changed(conn: DbConnection, partner_id: int) -> None:
    """In the transaction that changed the partner's rules: delivered at commit, or never."""
    await NOTIFY.fetchval(conn, channel=CHANNEL, p=partner_id)


class RulesCache:
    """One per Database (per process): partner id -> PartnerRules."""

    def __init__(self) -> None:
        self._rules: dict[int, PartnerRules] = {}
        self._generation: dict[int, int] = {}
        self._epoch = 0  # bumped by on_reconnect: every load in flight is stale
        self.loads = 0  # statements sent, for tests and the bench

    def peek(self, partner_id: int) -> PartnerRules | None:
        """The cached rules, or None when they must be loaded."""
        return self._rules.get(partner_id)

    async def rules(self, conn: DbConnection, partner_id: int) -> PartnerRules:
        found = self._rules.get(partner_id)
        if found is not None:
            return found
        generation, epoch = self._generation.get(partner_id, 0), self._epoch
        self.loads += 1
        rows = await VERSIONS.fetch(conn, p=partner_id)
        loaded = PartnerRules.of(partner_id, (RuleVersion.of(r) for r in rows))
        if self._generation.get(partner_id, 0) == generation and self._epoch == epoch:
            self._rules[partner_id] = loaded
        return loaded

    def forget(self, partner_id: int) -> None:
        self._generation[partner_id] = self._generation.get(partner_id, 0) + 1
        self._rules.pop(partner_id, None)

    def on_rules_changed(self, payload: str) -> None:
        """A notice on CHANNEL: the payload is the partner's id; anything else forgets all."""
        try:
            partner_id = int(payload)
        except ValueError:
            log.warning("unreadable earning notification %r: forgetting every partner's rules", payload)
            self.on_reconnect()
            return
        self.forget(partner_id)

    def on_reconnect(self) -> None:
        """Notices sent while nobody listened were lost: drop everything."""
        self._epoch += 1
        self._rules.clear()


_caches: weakref.WeakKeyDictionary[Database, RulesCache] = weakref.WeakKeyDictionary()


def rules_cache(db: Database) -> RulesCache:
    cache = _caches.get(db)
    if cache is None:
        cache = _caches[db] = RulesCache()
    return cache


async def subscribe(listener: Listener, db: Database) -> Subscription:
    """Feed `rules_cache(db)` from the process's listener: a change forgets the partner, a
    reconnection everything (notices sent while nobody listened were lost)."""
    cache = rules_cache(db)
    return await listener.subscribe(CHANNEL, cache.on_rules_changed, on_reconnect=cache.on_reconnect)
