"""Members' tiers: the tier definitions and each member's tier, owned here because several
services need them (earning reads the multiplier, the ledger's earn raises the tier, engagement
defines tiers and runs the downgrade job). DESIGN.md: "state that several need, such as a
member's tier, lives with its owner, here members".

Invariants:
- a member's tier only goes up inside an earn's transaction, under the member's wallet lock, by
  `upgrade` (conditional on the stored rank, so concurrent earns upgrade exactly once and write
  exactly one `tier.changed` event);
- it only goes down by engagement's downgrade job, at `qualifies_until` plus the grace period,
  never below the highest tier the qualifying points still reach.

Tier definitions are kept per process (`cached_tiers`), forgotten by a NOTIFY on CHANNEL from the
transaction that changes them (every gateway listens) and after TIER_CACHE_SECONDS at most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from shared import clock, sql
from shared.database import Database
from shared.listening import Listener, Subscription
from shared.outbox import Event, EventType, record_events
from shared.settings import get_settings
from shared.sql import DbConnection, Sql

CHANNEL = "coalition_tiers"
CACHE_KEY = ("tiers",)
CACHE_SECONDS = 30.0

ALL = Sql("SELECT id, name, qualifying_points, multiplier, benefits FROM tiers ORDER BY qualifying_points")
OF_MEMBERS = Sql(
    "SELECT member_id, tier_id, since, qualifies_until FROM member_tiers"
    " WHERE member_id = ANY(CAST(:ids AS bigint[]))"
)
MEMBER_TIER = Sql(
    "SELECT t.name, mt.since, mt.qualifies_until FROM member_tiers mt JOIN tiers t ON t.id = mt.tier_id"
    " WHERE mt.member_id = :m"
)
OF_NUMBERS = Sql(
    "SELECT m.member_number, t.tier_id FROM unnest(CAST(:numbers AS text[])) AS n(number)"
    " JOIN members m ON m.member_number = n.number JOIN member_tiers t ON t.member_id = m.id"
)
# Raises (or creates) members' tiers; a row whose stored rank is already at or above the new one
# is left alone, so a racing or repeated upgrade changes nothing and returns nothing.
RAISE = Sql(
    """
INSERT INTO member_tiers (member_id, tier_id, tier_points, since, qualifies_until)
SELECT m, t, pts, CAST(:now AS timestamptz), CAST(:until AS timestamptz)
FROM unnest(CAST(:members AS bigint[]), CAST(:tiers AS bigint[]), CAST(:points AS bigint[])) AS u(m, t, pts)
ON CONFLICT (member_id) DO UPDATE SET tier_id = EXCLUDED.tier_id, tier_points = EXCLUDED.tier_points,
  since = EXCLUDED.since, qualifies_until = EXCLUDED.qualifies_until
WHERE member_tiers.tier_points < EXCLUDED.tier_points
RETURNING member_id
"""
)
AUDIENCE = Sql(
    "SELECT m.id, m.member_number, ARRAY(SELECT e.partner_id FROM enrollments e WHERE e.member_id = m.id"
    " ORDER BY e.partner_id) AS partners FROM members m WHERE m.id = ANY(CAST(:ids AS bigint[]))"
)
NOTIFY = Sql("SELECT pg_notify(:channel, 'changed')")


@dataclass(frozen=True)
class Tier:
    id: int
    name: str
    qualifying_points: int
    multiplier: Decimal
    benefits: tuple[str, ...] = ()


@dataclass(frozen=True)
class TierSet:
    """Every tier, lowest first."""

    tiers: tuple[Tier, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.tiers)

    def by_id(self, tier_id: int | None) -> Tier | None:
        return next((t for t in self.tiers if t.id == tier_id), None)

    def reached(self, points: int) -> Tier | None:
        """The highest tier `points` qualify for (None: not even the lowest)."""
        found = None
        for tier in self.tiers:
            if tier.qualifying_points <= points:
                found = tier
        return found

    def above(self, tier: Tier | None) -> Tier | None:
        """The next tier up (the lowest one when `tier` is None)."""
        floor = tier.qualifying_points if tier else None
        return next((t for t in self.tiers if floor is None or t.qualifying_points > floor), None)


@dataclass(frozen=True)
class MemberTier:
    member_id: int
    tier_id: int
    since: datetime
    qualifies_until: datetime


def window_start(now: datetime) -> datetime:
    """Qualifying points count from this instant: TIER_WINDOW_MONTHS back (rolling)."""
    return clock.add_months(now, -get_settings().tier_window_months)


def anniversary(since: datetime) -> datetime:
    """Until when a tier reached at `since` is kept, whatever the points do."""
    return clock.add_months(since, get_settings().tier_window_months)


async def all_tiers(conn: DbConnection) -> TierSet:
    rows = await ALL.fetch(conn)
    return TierSet(
        tuple(
            Tier(r["id"], r["name"], r["qualifying_points"], r["multiplier"], tuple(r["benefits"] or ()))
            for r in rows
        )
    )


async def cached_tiers(db: Database, conn: DbConnection | None = None) -> TierSet:
    """The tier definitions from the process's cache; a statement only when it misses."""
    found: TierSet | None = db.cache.get(CACHE_KEY)
    if found is not None:
        return found
    if conn is None:
        async with sql.connection(db) as own:
            found = await all_tiers(own)
    else:
        found = await all_tiers(conn)
    db.cache.put(CACHE_KEY, CACHE_SECONDS, found)
    return found


def peek_tiers(db: Database) -> TierSet | None:
    return db.cache.get(CACHE_KEY)


async def notify_changed(db: Database, conn: DbConnection) -> None:
    """In the transaction that changed the tiers: every process forgets them at commit."""
    await NOTIFY.fetchval(conn, channel=CHANNEL)
    db.cache.forget(CACHE_KEY)


async def subscribe(listener: Listener, db: Database) -> Subscription:
    def forget(_: str = "") -> None:
        db.cache.forget(CACHE_KEY)

    return await listener.subscribe(CHANNEL, forget, on_reconnect=forget)


async def member_tiers(conn: DbConnection, member_ids: Sequence[int]) -> dict[int, MemberTier]:
    rows = await OF_MEMBERS.fetch(conn, ids=list(member_ids))
    return {
        r["member_id"]: MemberTier(r["member_id"], r["tier_id"], r["since"], r["qualifies_until"])
        for r in rows
    }


async def tiers_by_number(conn: DbConnection, member_numbers: Sequence[int | str]) -> dict[str, int]:
    """Member number -> tier id, for the members of a batch that hold a tier (one statement)."""
    rows = await OF_NUMBERS.fetch(conn, numbers=list(member_numbers))
    return {r["member_number"]: r["tier_id"] for r in rows}


async def upgrade(
    conn: DbConnection, tiers: TierSet, qualifying: dict[int, int], now: datetime
) -> list[Event]:
    """Raises each member to the highest tier their qualifying points reach, when above the tier
    they hold, and records one `tier.changed` UP event per member raised. Call it in the earn's
    transaction, with the members' wallets locked. Set-wise: three statements for any number."""
    if not tiers or not qualifying:
        return []
    held = await member_tiers(conn, list(qualifying))
    wanted: dict[int, Tier] = {}
    for member_id, points in qualifying.items():
        target = tiers.reached(points)
        current = tiers.by_id(held[member_id].tier_id) if member_id in held else tiers.reached(0)
        # A base tier (0 points) is held implicitly: no row, no event, until a higher one is reached.
        floor = current.qualifying_points if current is not None else 0
        if target is not None and target.qualifying_points > floor:
            wanted[member_id] = target
    if not wanted:
        return []
    ids = sorted(wanted)
    raised = {
        r["member_id"]
        for r in await RAISE.fetch(
            conn,
            members=ids,
            tiers=[wanted[m].id for m in ids],
            points=[wanted[m].qualifying_points for m in ids],
            now=now,
            until=anniversary(now),
        )
    }
    changes = [
        (m, tiers.by_id(held[m].tier_id) if m in held else tiers.reached(0), wanted[m], qualifying[m])
        for m in ids
        if m in raised
    ]
    return await record_changes(conn, changes, "UP", now)


async def record_changes(
    conn: DbConnection,
    changes: Sequence[tuple[int, Tier | None, Tier | None, int]],
    direction: str,
    now: datetime,
) -> list[Event]:
    """One `tier.changed` event per (member, from, to, qualifying points), in the caller's
    transaction; the audience is the member's linked partners (docs: events_spec)."""
    if not changes:
        return []
    audience = {r["id"]: r for r in await AUDIENCE.fetch(conn, ids=[c[0] for c in changes])}
    events = [
        Event(
            EventType.TIER_CHANGED,
            {
                "memberNumber": audience[m]["member_number"],
                "fromTier": old.name if old else None,
                "toTier": new.name if new else None,
                "direction": direction,
                "qualifyingPoints": points,
            },
            member_id=m,
            partner_ids=list(audience[m]["partners"]),
            occurred_at=now,
        )
        for m, old, new, points in changes
    ]
    await record_events(conn, events)
    return events
