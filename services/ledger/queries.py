"""Reading points: balances and history, as the caller is allowed to see them.

Balances are computed from lots at read time, so a lot whose return window has passed counts as
available (and one past its expiry as gone) whatever the worker has done yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.members import service as members
from shared import clock
from shared.access import Principal
from shared.errors import Forbidden
from shared.pagination import Page, decode_cursor, decode_cursor_parts, make_page, page_size


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


async def _require_visible(session: AsyncSession, principal: Principal, member_id: int) -> None:
    if principal.member_id is not None:
        if principal.member_id != member_id:
            raise Forbidden("a member sees only their own points")
        return
    if principal.partner_id is None:
        principal.require_admin("admin:partners")
        return
    principal.require("members:read")
    if not await members.is_enrolled(session, member_id, principal.partner_id):
        raise Forbidden("this member is not enrolled with you")


async def balance(session: AsyncSession, principal: Principal, member_id: int) -> Balance:
    await _require_visible(session, principal, member_id)
    return (await balances(session, [member_id]))[member_id]


async def balances(session: AsyncSession, member_ids: list[int]) -> dict[int, Balance]:
    """Batch read (DataLoader); callers check visibility first. Live holds are taken out of the
    lots they reserve; a hold past its expiry counts as released, whatever the worker has done."""
    rows = await session.execute(
        text(
            "WITH held AS (SELECT hl.lot_id, SUM(hl.points) AS points FROM holds h"
            " JOIN hold_lots hl ON hl.hold_id = h.id WHERE h.member_id = ANY(CAST(:ids AS bigint[]))"
            " AND h.status = 'ACTIVE' AND h.expires_at > :now GROUP BY hl.lot_id)"
            " SELECT w.member_id, w.debt,"
            " COALESCE(SUM(l.remaining - COALESCE(held.points, 0))"
            " FILTER (WHERE l.available_at <= :now), 0) AS available,"
            " COALESCE(SUM(l.remaining) FILTER (WHERE l.available_at > :now), 0) AS pending,"
            " (SELECT COALESCE(SUM(h.points), 0) FROM holds h WHERE h.member_id = w.member_id"
            " AND h.status = 'ACTIVE' AND h.expires_at > :now) AS held"
            " FROM wallets w LEFT JOIN lots l ON l.member_id = w.member_id AND l.remaining > 0"
            " AND l.expires_at > :now AND l.expired_at IS NULL"
            " LEFT JOIN held ON held.lot_id = l.id"
            " WHERE w.member_id = ANY(CAST(:ids AS bigint[])) GROUP BY w.member_id, w.debt"
        ),
        {"ids": member_ids, "now": clock.now()},
    )
    return {
        r.member_id: Balance(available=int(r.available) - r.debt, pending=int(r.pending), held=int(r.held))
        for r in rows
    }


_STATUS_SQL = """
CASE
  WHEN e.kind = 'EARN' AND p.points_reversed > 0 AND p.points_reversed = p.points_earned
    THEN 'REVERSED'
  WHEN e.kind = 'EARN' AND l.id IS NOT NULL AND (l.expired_at IS NOT NULL OR l.expires_at <= :now)
    THEN 'EXPIRED'
  WHEN e.kind = 'EARN' AND l.id IS NOT NULL AND l.available_at > :now THEN 'PENDING'
  WHEN e.kind = 'EARN' THEN 'AVAILABLE'
  WHEN e.kind = 'REDEEM' AND r.cancel_entry_id IS NOT NULL THEN 'CANCELLED'
  ELSE 'COMPLETED'
END
"""


async def transactions(
    session: AsyncSession,
    principal: Principal,
    member_id: int,
    *,
    first: int | None,
    after: str | None,
) -> Page[TransactionView]:
    """Newest first. A partner sees only what happened at it; a member or admin sees all."""
    await _require_visible(session, principal, member_id)
    size = page_size(first)
    position = decode_cursor(after)
    where = ["e.member_id = :m"]
    params: dict[str, object] = {"m": member_id, "now": clock.now(), "limit": size + 1}
    if principal.partner_id is not None:
        where.append("e.partner_id = :p")
        params["p"] = principal.partner_id
    if position is not None:
        where.append("e.id < :after")
        params["after"] = position
    rows = await session.execute(
        text(
            f"SELECT e.id, e.kind, e.partner_id, e.points, e.order_id, e.occurred_at,"
            f" {_STATUS_SQL} AS status FROM journal_entries e"
            " LEFT JOIN purchases p ON e.kind = 'EARN' AND p.entry_id = e.id"
            " LEFT JOIN lots l ON l.id = p.lot_id"
            " LEFT JOIN redemptions r ON e.kind = 'REDEEM' AND r.entry_id = e.id"
            f" WHERE {' AND '.join(where)} ORDER BY e.id DESC LIMIT :limit"
        ),
        params,
    )
    views = [TransactionView(**row._mapping) for row in rows]
    return make_page(views, size, lambda t: t.id)


__all__ = ["Balance", "TransactionView", "balance", "balances", "transactions"]


@dataclass(frozen=True)
class ExpiringPoints:
    points: int
    expires_at: datetime


async def expiring_points(
    session: AsyncSession, principal: Principal, member_id: int, within: timedelta
) -> list[ExpiringPoints]:
    """What the member will lose in the coming `within`, soonest first, so apps can warn them."""
    await _require_visible(session, principal, member_id)
    now = clock.now()
    rows = await session.execute(
        text(
            "SELECT expires_at, SUM(remaining) AS points FROM lots"
            " WHERE member_id = :m AND remaining > 0 AND expired_at IS NULL"
            " AND expires_at > :now AND expires_at <= :until"
            " GROUP BY expires_at ORDER BY expires_at LIMIT 100"
        ),
        {"m": member_id, "now": now, "until": now + within},
    )
    return [ExpiringPoints(points=int(r.points), expires_at=r.expires_at) for r in rows]


@dataclass(frozen=True)
class MemberExpiry:
    member_id: int
    member_number: str
    expires_on: date
    points: int


async def points_expiring_soon(
    session: AsyncSession,
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
    rows = await session.execute(
        text(
            "SELECT * FROM (SELECT l.member_id, m.member_number,"
            " (l.expires_at AT TIME ZONE 'UTC')::date AS day, SUM(l.remaining) AS points"
            " FROM lots l JOIN members m ON m.id = l.member_id"
            " WHERE l.remaining > 0 AND l.expired_at IS NULL"
            " AND l.expires_at > :now AND l.expires_at <= :until GROUP BY 1, 2, 3) g"
            " WHERE CAST(:day AS int) IS NULL"
            " OR (g.day - DATE '0001-01-01' + 1, g.member_id) > (CAST(:day AS int), CAST(:member AS bigint))"
            " ORDER BY g.day, g.member_id LIMIT :limit"
        ),
        {
            "now": now,
            "until": now + within,
            "limit": size + 1,
            "day": position[0] if position else None,
            "member": position[1] if position else None,
        },
    )
    items = [MemberExpiry(r.member_id, r.member_number, r.day, int(r.points)) for r in rows]
    return make_page(items, size, lambda e: (e.expires_on.toordinal(), e.member_id))
