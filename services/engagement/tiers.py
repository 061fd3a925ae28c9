"""Tiers' rules: defining tiers (admins), what a member's tier view shows, and the downgrade at the
anniversary. The state (tier definitions, members' tiers) and the upgrade inside the earn live
in services/members/tiers.py: the earn's transaction belongs to the ledger, left of here.

Rules, stated:
- qualifying points: points earned by purchases at every partner over the rolling window
  (TIER_WINDOW_MONTHS, default 12), net of refunds (a refund lowers them); transfers and
  redemptions do not count;
- upgrade: at once, inside the earn that crosses a tier's qualifyingPoints; the tier is then held
  until its anniversary (`qualifiesUntil` = reached + window);
- downgrade: only once `qualifiesUntil` + TIER_GRACE_DAYS (default 30) has passed, to the highest
  tier the qualifying points still reach (never below it; possibly the same tier, which then
  renews for another window). A member whose points reach no tier loses theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

import asyncpg

from services.ledger import service as ledger
from services.members import tiers as member_tiers
from services.members.tiers import Tier, TierSet
from shared import audit_log, sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator
from shared.settings import get_settings
from shared.sql import Sql

MAX_NAME = 100
MAX_BENEFITS = 50
MAX_BENEFIT = 500
MAX_MULTIPLIER = Decimal(100)

INSERT = Sql(
    "INSERT INTO tiers (name, qualifying_points, multiplier, benefits)"
    " VALUES (:name, :points, :multiplier, CAST(:benefits AS text[])) RETURNING id"
)
NAME_USED = Sql("SELECT 1 FROM tiers WHERE lower(name) = lower(:name)")
POINTS_USED = Sql("SELECT 1 FROM tiers WHERE qualifying_points = :points")


@dataclass(frozen=True)
class TierTerms:
    name: str
    qualifying_points: int
    multiplier: Decimal | str
    benefits: tuple[str, ...] = ()


def _multiplier(v: Validator, value: Decimal | str) -> Decimal | None:
    try:
        m = Decimal(str(value))
    except InvalidOperation:
        m = None
    if m is None or not m.is_finite():
        v.add("multiplier", UserErrorCode.INVALID_AMOUNT, "multiplier must be a decimal number")
        return None
    v.check(
        Decimal(1) <= m <= MAX_MULTIPLIER and m == m.quantize(Decimal("0.0001")),
        "multiplier",
        UserErrorCode.INVALID_AMOUNT,
        f"multiplier must be between 1 and {MAX_MULTIPLIER}, with at most 4 decimals",
    )
    return m


async def create_tier(db: Database, principal: Principal, terms: TierTerms) -> Tier:
    """A new tier (admins, `admin:partners`). userErrors: REQUIRED/TOO_LONG name, NAME_TAKEN
    name, INVALID_AMOUNT qualifyingPoints (negative) or multiplier (below 1), INVALID
    qualifyingPoints (another tier has them: tiers are strictly ordered), TOO_LONG benefits."""
    principal.require_admin("admin:partners")
    v = Validator()
    v.text(terms.name, "name", max_length=MAX_NAME)
    v.check(
        terms.qualifying_points >= 0,
        "qualifyingPoints",
        UserErrorCode.INVALID_AMOUNT,
        "qualifyingPoints must be 0 (a base tier) or more",
    )
    multiplier = _multiplier(v, terms.multiplier)
    v.check(
        len(terms.benefits) <= MAX_BENEFITS, "benefits", UserErrorCode.TOO_LONG, f"at most {MAX_BENEFITS}"
    )
    for i, benefit in enumerate(terms.benefits):
        v.text(benefit, f"benefits[{i}]", max_length=MAX_BENEFIT)
    v.raise_if_any()
    assert multiplier is not None
    async with sql.transaction(db) as conn:
        if await NAME_USED.fetchval(conn, name=terms.name.strip()):
            v.add("name", UserErrorCode.NAME_TAKEN, "a tier with this name exists")
        if await POINTS_USED.fetchval(conn, points=terms.qualifying_points):
            v.add("qualifyingPoints", UserErrorCode.INVALID, "another tier has these qualifyingPoints")
        v.raise_if_any()
        try:
            tier_id = await INSERT.fetchval(
                conn,
                name=terms.name.strip(),
                points=terms.qualifying_points,
                multiplier=multiplier,
                benefits=list(terms.benefits),
            )
        except asyncpg.UniqueViolationError as exc:  # a racing createTier took it
            raise DomainError.single(
                UserErrorCode.NAME_TAKEN, "a tier with this name exists", "name"
            ) from exc
        await audit_log.record_on(conn, principal, "tier.create", f"tier:{tier_id}", {})
        await member_tiers.notify_changed(db, conn)
    return Tier(tier_id, terms.name.strip(), terms.qualifying_points, multiplier, tuple(terms.benefits))


async def tiers(db: Database) -> TierSet:
    """Every tier, lowest first (anyone with a token may read what tiers exist)."""
    async with sql.connection(db) as conn:
        return await member_tiers.all_tiers(conn)


DUE = Sql(
    "SELECT mt.member_id FROM member_tiers mt WHERE mt.qualifies_until <= :due"
    " ORDER BY mt.qualifies_until LIMIT :batch"
)
LOCK_WALLETS = Sql(
    "SELECT member_id FROM wallets WHERE member_id = ANY(CAST(:ids AS bigint[]))"
    " ORDER BY member_id FOR UPDATE SKIP LOCKED"
)
RETAKE = Sql(
    "SELECT member_id, tier_id FROM member_tiers WHERE member_id = ANY(CAST(:ids AS bigint[]))"
    " AND qualifies_until <= :due FOR UPDATE"
)
MOVE = Sql(
    "UPDATE member_tiers SET tier_id = :tier, tier_points = :points, since = :now, qualifies_until = :until"
    " WHERE member_id = :m"
)
RENEW = Sql("UPDATE member_tiers SET qualifies_until = :until WHERE member_id = ANY(CAST(:ids AS bigint[]))")
DROP = Sql("DELETE FROM member_tiers WHERE member_id = :m")


@dataclass(frozen=True)
class DowngradeResult:
    reviewed: int
    downgraded: int


async def review_anniversaries(db: Database, now: datetime, batch: int) -> DowngradeResult:
    """One batch of members past their anniversary + grace: each is moved to the highest tier
    their qualifying points reach (down, or the same tier renewed for another window), with a
    `tier.changed` DOWN event when it goes down. Takes the members' wallet locks (skipping busy
    wallets: an earn in flight, retried next round), as upgrades do, so the two never cross."""
    due = now - timedelta(days=get_settings().tier_grace_days)
    reviewed = downgraded = 0
    async with sql.transaction(db) as conn:
        ids = [r["member_id"] for r in await DUE.fetch(conn, due=due, batch=batch)]
        if not ids:
            return DowngradeResult(0, 0)
        locked = [r["member_id"] for r in await LOCK_WALLETS.fetch(conn, ids=ids)]
        held = {r["member_id"]: r["tier_id"] for r in await RETAKE.fetch(conn, ids=locked, due=due)}
        if not held:
            return DowngradeResult(0, 0)
        tier_set = await member_tiers.all_tiers(conn)
        points = await ledger.qualifying_points(conn, sorted(held), member_tiers.window_start(now))
        renewed: list[int] = []
        changes = []
        for member_id, tier_id in sorted(held.items()):
            reviewed += 1
            current = tier_set.by_id(tier_id)
            target = tier_set.reached(points[member_id])
            if (
                current is not None
                and target is not None
                and target.qualifying_points >= current.qualifying_points
            ):
                renewed.append(member_id)  # still qualifies: another window (upgrades happen in earns)
                continue
            if target is None:
                await DROP.execute(conn, m=member_id)
            else:
                await MOVE.execute(
                    conn,
                    m=member_id,
                    tier=target.id,
                    points=target.qualifying_points,
                    now=now,
                    until=member_tiers.anniversary(now),
                )
            downgraded += 1
            changes.append((member_id, current, target, points[member_id]))
        if renewed:
            await RENEW.execute(conn, ids=renewed, until=member_tiers.anniversary(now))
        await member_tiers.record_changes(conn, changes, "DOWN", now)
    return DowngradeResult(reviewed, downgraded)
