"""Rules are cached per process and never read per earn; a change reaches every process through
LISTEN/NOTIFY (two Database objects stand for two gateway processes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from services.earning import cache
from shared.database import Database
from shared.listening import Listener
from tests.earning.helpers import rule
from tests.factories import earn, enroll, make_partner


async def _until(condition, seconds: float = 5.0) -> None:
    """Polls: the notice arrives on the other process's listener connection, asynchronously."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 (nothing to wait on but the other connection)
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def _listening(db: Database) -> AsyncIterator[None]:
    """What each gateway process runs: its listener, the rules cache subscribed on it."""
    listener = Listener(db)
    await cache.subscribe(listener, db)
    await listener.start()
    try:
        yield
    finally:
        await listener.stop()


async def test_a_rule_change_reaches_another_process(db, database_url):
    other = Database(database_url, pool_size=2)
    try:
        async with _listening(db), _listening(other):
            shop = await make_partner(db, earn_rate="1")
            member = await enroll(db, shop)
            assert (await earn(other, shop, member.member_number, "10.00")).result["points"] == 10
            theirs = cache.rules_cache(other)
            loads = theirs.loads
            assert (await earn(other, shop, member.member_number, "10.00")).result["points"] == 10
            assert theirs.loads == loads  # cached: no read per earn
            await rule(db, shop, "cap 3", cap_per_purchase=3)  # through the first process
            await _until(lambda: theirs.peek(shop.id) is None)
            assert (await earn(other, shop, member.member_number, "10.00")).result["points"] == 3
            assert theirs.loads == loads + 1
    finally:
        await other.dispose()


def test_reconnect_and_unreadable_notices_drop_everything():
    rules = cache.RulesCache()
    rules._rules[1] = object()  # type: ignore[assignment]
    rules._rules[2] = object()  # type: ignore[assignment]
    rules.on_rules_changed("1")
    assert rules.peek(1) is None and rules.peek(2) is not None
    rules.on_rules_changed("not a partner id")
    assert rules.peek(2) is None
    rules._rules[3] = object()  # type: ignore[assignment]
    rules.on_reconnect()
    assert rules.peek(3) is None


async def test_a_load_that_raced_with_a_change_is_not_kept(db):
    shop = await make_partner(db)
    rules = cache.RulesCache()
    original = cache.VERSIONS.fetch

    async def slow_fetch(conn, **params):
        rows = await original(conn, **params)
        rules.on_rules_changed(str(shop.id))  # a change committed while the load was in flight
        return rows

    from shared import sql

    async with sql.connection(db) as conn:
        cache.VERSIONS.fetch = slow_fetch  # type: ignore[method-assign]
        try:
            await rules.rules(conn, shop.id)
        finally:
            cache.VERSIONS.fetch = original  # type: ignore[method-assign]
    assert rules.peek(shop.id) is None
