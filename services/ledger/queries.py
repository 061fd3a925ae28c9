"""Reading points: balances and history, as the caller is allowed to see them.

Balances are computed from lots at read time, so a lot whose return window has passed counts as
available (and one past its expiry as gone) whatever the worker has done yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.members import service as members
from shared import clock
from shared.access import Principal
from shared.errors import Forbidden
from shared.pagination import Page, decode_cursor, make_page, page_size


@dataclass(frozen=True)
class Balance:
    available: int  # may be negative: a refund took back points the member had spent
    pending: int


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
    """Batch read (DataLoader); callers check visibility first."""
    rows = await session.execute(
        text(
            "SELECT w.member_id, w.debt,"
            " COALESCE(SUM(l.remaining) FILTER (WHERE l.available_at <= :now), 0) AS available,"
            " COALESCE(SUM(l.remaining) FILTER (WHERE l.available_at > :now), 0) AS pending"
            " FROM wallets w LEFT JOIN lots l ON l.member_id = w.member_id AND l.remaining > 0"
            " AND l.expires_at > :now AND l.expired_at IS NULL"
            " WHERE w.member_id = ANY(CAST(:ids AS bigint[])) GROUP BY w.member_id, w.debt"
        ),
        {"ids": member_ids, "now": clock.now()},
    )
    return {r.member_id: Balance(available=int(r.available) - r.debt, pending=int(r.pending)) for r in rows}


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
