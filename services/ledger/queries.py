"""Reading points: balances and history, as the caller is allowed to see them.

Balances are computed from lots at read time, so a lot whose return window has passed counts as
available (and one past its expiry as gone) whatever the worker has done yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from asyncpg import Record

from services.members import service as members
from shared import clock, sql
from shared.access import Principal
from shared.database import Database
from shared.errors import Forbidden
from shared.pagination import Page, decode_cursor, decode_cursor_parts, make_page, page_size
from shared.sql import DbConnection, Sql


@dataclass(frozen=True)
class Balance:
    available: int  # may be negative: a refund took back points the member had spent
    pending: int
    held: int = 0


@dataclass(frozen=True)
class TransactionView:
    id: int
    kind: str
    partner_id: int
    points: int
    order_id: str | None
    occurred_at: datetime
    status: str


async def _require_visible(
    conn: DbConnection, principal: Principal, member_id: int, visible_to: Principal | None = None
) -> None:
    """Refuses a caller who may not see the member's points. The scopes are checked every time
    (in memory); whether a partner is linked to the member is asked of the database only when
    the members service has not already checked it for this very caller: `visible_to` is the
    principal a `MemberView` was found for (`members.find_member`), passed on by the schema."""
    if principal.member_id is not None:
        if principal.member_id != member_id:
            raise Forbidden("a member sees only their own points")
        return
    if principal.partner_id is None:
        principal.require_admin("admin:partners")
        return
    principal.require("members:read")
    if visible_to is principal:
        return
    if not await members.is_linked(conn, member_id, principal.partner_id):
        raise Forbidden("this member is not linked to you")


_BALANCES = (
    "WITH held AS (SELECT hl.lot_id, SUM(hl.points) AS points FROM holds h"
    " JOIN hold_lots hl ON hl.hold_id = h.id WHERE h.member_id {members}"
    " AND h.status = 'ACTIVE' AND h.expires_at > :now GROUP BY hl.lot_id)"
    # SUM of bigint is numeric; cast back, so the driver decodes integers, not Decimals.
    " SELECT w.member_id, w.debt,"
    " CAST(COALESCE(SUM(l.remaining - COALESCE(held.points, 0))"
    " FILTER (WHERE l.available_at <= :now), 0) AS bigint) AS available,"
    " CAST(COALESCE(SUM(l.remaining) FILTER (WHERE l.available_at > :now), 0) AS bigint) AS pending,"
    " CAST((SELECT COALESCE(SUM(h.points), 0) FROM holds h WHERE h.member_id = w.member_id"
    " AND h.status = 'ACTIVE' AND h.expires_at > :now) AS bigint) AS held"
    " FROM wallets w LEFT JOIN lots l ON l.member_id = w.member_id AND l.remaining > 0"
    " AND l.expires_at > :now AND l.expired_at IS NULL"
    " LEFT JOIN held ON held.lot_id = l.id"
    " WHERE w.member_id {members} GROUP BY w.member_id, w.debt"
)
BALANCES = Sql(_BALANCES.format(members="= ANY(CAST(:ids AS bigint[]))"))
# One member's, the hot read: with `= :id` PostgreSQL settles on a generic plan for the prepared
# statement after five runs, where the array form is planned anew every time (its custom plans
# look cheaper to the planner): measured here, 0.43 ms a round trip against 1.2 ms, most of it
# the server's CPU, which on a small machine the gateway shares.
BALANCE = Sql(_BALANCES.format(members="= :id"))
NOTHING = Balance(available=0, pending=0, held=0)


async def balance(
    db: Database, principal: Principal, member_id: int, *, visible_to: Principal | None = None
) -> Balance:
    """One statement when `visible_to` is the caller (see `_require_visible`)."""
    async with sql.connection(db) as conn:
        await _require_visible(conn, principal, member_id, visible_to)
        rows = await BALANCE.fetch(conn, id=member_id, now=clock.now())
    return _balances(rows, [member_id])[member_id]


async def balances(conn: DbConnection, member_ids: list[int]) -> dict[int, Balance]:
    """Batch read; callers check visibility first. Live holds are taken out of the lots they
    reserve; a hold past its expiry counts as released, whatever the worker has done. A member
    the ledger never booked for (no wallet yet) has nothing."""
    rows = await BALANCES.fetch(conn, ids=member_ids, now=clock.now())
    return _balances(rows, member_ids)


def _balances(rows: list[Record], member_ids: list[int]) -> dict[int, Balance]:
    found = {
        r["member_id"]: Balance(
            available=int(r["available"]) - r["debt"], pending=int(r["pending"]), held=int(r["held"])
        )
        for r in rows
    }
    return {m: found.get(m, NOTHING) for m in member_ids}


# EntryStatus, derived from the entry's purchase, lot and redemption as they are now.
TRANSACTIONS = """
SELECT e.id, e.kind, e.partner_id, e.points, e.order_id, e.occurred_at,
  CASE
    WHEN e.kind = 'EARN' AND p.points_reversed > 0 AND p.points_reversed = p.points_earned
      THEN 'REVERSED'
    WHEN e.kind = 'EARN' AND l.id IS NOT NULL AND (l.expired_at IS NOT NULL OR l.expires_at <= :now)
      THEN 'EXPIRED'
    WHEN e.kind = 'EARN' AND l.id IS NOT NULL AND l.available_at > :now THEN 'PENDING'
    WHEN e.kind = 'EARN' THEN 'AVAILABLE'
    WHEN e.kind IN ('ACTIVITY', 'REFERRAL') AND c.id IS NOT NULL
         AND (c.expired_at IS NOT NULL OR c.expires_at <= :now) THEN 'EXPIRED'
    WHEN e.kind IN ('ACTIVITY', 'REFERRAL') AND c.id IS NOT NULL AND c.available_at > :now THEN 'PENDING'
    WHEN e.kind IN ('ACTIVITY', 'REFERRAL') AND c.id IS NOT NULL THEN 'AVAILABLE'
    WHEN e.kind = 'REDEEM' AND r.cancel_entry_id IS NOT NULL THEN 'CANCELLED'
    ELSE 'COMPLETED'
  END AS status
FROM journal_entries e
-- by its partner and order id too (an invariant `coalition audit` checks), so the unique index on
-- them finds the purchase: purchases has no index on entry_id, and a join on it alone read them all
LEFT JOIN purchases p ON e.kind = 'EARN' AND p.partner_id = e.partner_id AND p.order_id = e.order_id
  AND p.entry_id = e.id
LEFT JOIN lots l ON l.id = p.lot_id
-- an activity's or referral's points: the one lot its entry opened (ix_lots_member_entry)
LEFT JOIN lots c ON e.kind IN ('ACTIVITY', 'REFERRAL') AND c.member_id = e.member_id
  AND c.earn_entry_id = e.id
LEFT JOIN redemptions r ON e.kind = 'REDEEM' AND r.entry_id = e.id
WHERE e.member_id = :m AND (CAST(:after AS bigint) IS NULL OR e.id < :after) {partner}
ORDER BY e.id DESC LIMIT :limit
"""
# Two statements rather than an OR on the partner, so each plan uses its index.
ALL_TRANSACTIONS = Sql(TRANSACTIONS.format(partner="AND CAST(:p AS bigint) IS NULL"))
PARTNER_TRANSACTIONS = Sql(TRANSACTIONS.format(partner="AND e.partner_id = :p"))


async def transactions(
    db: Database,
    principal: Principal,
    member_id: int,
    *,
    first: int | None,
    after: str | None,
    visible_to: Principal | None = None,
) -> Page[TransactionView]:
    """Newest first. A partner sees only what happened at it; a member or admin sees all. One
    statement a page when `visible_to` is the caller (see `_require_visible`)."""
    size = page_size(first)
    position = decode_cursor(after)
    query = PARTNER_TRANSACTIONS if principal.partner_id is not None else ALL_TRANSACTIONS
    async with sql.connection(db) as conn:
        await _require_visible(conn, principal, member_id, visible_to)
        rows = await query.fetch(
            conn,
            m=member_id,
            p=principal.partner_id,
            now=clock.now(),
            after=position,
            limit=size + 1,
        )
    views = [TransactionView(**dict(row)) for row in rows]
    return make_page(views, size, lambda t: t.id)


@dataclass(frozen=True)
class ExpiringPoints:
    points: int
    expires_at: datetime


EXPIRING = Sql(
    "SELECT expires_at, SUM(remaining) AS points FROM lots"
    " WHERE member_id = :m AND remaining > 0 AND expired_at IS NULL"
    " AND expires_at > :now AND expires_at <= :until"
    " GROUP BY expires_at ORDER BY expires_at LIMIT 100"
)


async def expiring_points(
    db: Database,
    principal: Principal,
    member_id: int,
    within: timedelta,
    *,
    visible_to: Principal | None = None,
) -> list[ExpiringPoints]:
    """What the member will lose in the coming `within`, soonest first, so apps can warn them."""
    now = clock.now()
    async with sql.connection(db) as conn:
        await _require_visible(conn, principal, member_id, visible_to)
        rows = await EXPIRING.fetch(conn, m=member_id, now=now, until=now + within)
    return [ExpiringPoints(points=int(r["points"]), expires_at=r["expires_at"]) for r in rows]


@dataclass(frozen=True)
class MemberExpiry:
    member_id: int
    member_number: str
    expires_on: date
    points: int


# Per member and day; the cursor is (day as an ordinal, member id).
EXPIRING_SOON = Sql(
    "SELECT * FROM (SELECT l.member_id, (l.expires_at AT TIME ZONE 'UTC')::date AS day,"
    " SUM(l.remaining) AS points FROM lots l"
    " WHERE l.remaining > 0 AND l.expired_at IS NULL"
    " AND l.expires_at > :now AND l.expires_at <= :until GROUP BY 1, 2) g"
    " WHERE CAST(:day AS int) IS NULL"
    " OR (g.day - DATE '0001-01-01' + 1, g.member_id) > (CAST(:day AS int), CAST(:member AS bigint))"
    " ORDER BY g.day, g.member_id LIMIT :limit"
)


async def points_expiring_soon(
    db: Database,
    principal: Principal,
    within: timedelta,
    *,
    first: int | None,
    after: str | None,
) -> Page[MemberExpiry]:
    """Points about to expire per member and day (admins), soonest first: what re-engagement
    campaigns start from."""
    principal.require_admin("admin:partners")
    size = page_size(first)
    position = decode_cursor_parts(after, 2)
    now = clock.now()
    async with sql.connection(db) as conn:
        rows = await EXPIRING_SOON.fetch(
            conn,
            now=now,
            until=now + within,
            limit=size + 1,
            day=position[0] if position else None,
            member=position[1] if position else None,
        )
        numbers = await members.member_numbers(conn, list({r["member_id"] for r in rows}))
    items = [MemberExpiry(r["member_id"], numbers[r["member_id"]], r["day"], int(r["points"])) for r in rows]
    return make_page(items, size, lambda e: (e.expires_on.toordinal(), e.member_id))
