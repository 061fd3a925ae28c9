"""Reading purchases back for the earning service: what a member earned at a partner in a period
(its caps per member), and the documents stored with purchases (their earn breakdown).

Both are read contracts of the ledger's purchases; the ledger does not interpret either.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared import sql
from shared.database import Database
from shared.sql import DbConnection, Sql

# One statement for every period: points earned net of refunds, by purchases that occurred in it.
EARNED_IN_PERIODS = Sql(
    "SELECT p.i, COALESCE((SELECT sum(points_earned - points_reversed) FROM purchases"
    "  WHERE member_id = :m AND partner_id = :partner AND occurred_at >= p.s AND occurred_at < p.e), 0)"
    " AS points FROM unnest(CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]))"
    " WITH ORDINALITY AS p(s, e, i) ORDER BY p.i"
)
# Whether the member bought at the partner, and their latest earn, redemption or activity there.
ACTIVITY = Sql(
    "SELECT EXISTS (SELECT 1 FROM purchases WHERE member_id = :m AND partner_id = :partner) AS bought,"
    " (SELECT max(occurred_at) FROM journal_entries WHERE member_id = :m AND partner_id = :partner"
    "  AND kind IN ('EARN', 'REDEEM', 'ACTIVITY')) AS last_seen"
)
# Qualifying points for tiers: points earned by purchases (net of refunds) at every partner, by
# purchases that occurred since the window's start; members with none are absent.
QUALIFYING = Sql(
    "SELECT member_id, sum(points_earned - points_reversed) AS points FROM purchases"
    " WHERE member_id = ANY(CAST(:members AS bigint[])) AND occurred_at >= :since GROUP BY member_id"
)
DETAILS = Sql(
    "SELECT p.partner_id, p.order_id, p.points_earned, p.earn_detail::text AS detail"
    " FROM purchases p JOIN unnest(CAST(:partners AS bigint[]), CAST(:orders AS text[])) AS k(pid, oid)"
    " ON p.partner_id = k.pid AND p.order_id = k.oid"
)


async def earned_in_periods(
    conn: DbConnection, member_id: int, partner_id: int, periods: list[tuple[datetime, datetime]]
) -> list[int]:
    """Points the member earned at the partner (net of refunds) by purchases that occurred in each
    [start, end). Called under the member's wallet lock, it is exact: every earn of the member
    serializes on that lock, so none can slip in between this read and the write it decides."""
    rows = await EARNED_IN_PERIODS.fetch(
        conn,
        m=member_id,
        partner=partner_id,
        starts=[start for start, _ in periods],
        ends=[end for _, end in periods],
    )
    return [int(r["points"]) for r in rows]


async def qualifying_points(conn: DbConnection, member_ids: list[int], since: datetime) -> dict[int, int]:
    """Member id -> points earned by purchases since `since`, at every partner, net of refunds
    (transfers and redemptions do not count). Exact under the members' wallet locks."""
    rows = await QUALIFYING.fetch(conn, members=member_ids, since=since)
    found = {r["member_id"]: int(r["points"]) for r in rows}
    return {m: found.get(m, 0) for m in member_ids}


async def activity_at_partner(
    conn: DbConnection, member_id: int, partner_id: int
) -> tuple[bool, datetime | None]:
    """Whether the member ever bought at the partner, and when they last earned, redeemed or did an
    activity there (None: never). Under the member's wallet lock it is exact, as `earned_in_periods` is."""
    row = await ACTIVITY.fetchrow(conn, m=member_id, partner=partner_id)
    assert row is not None
    return bool(row["bought"]), row["last_seen"]


async def earn_details(
    db: Database, keys: list[tuple[int, str]]
) -> dict[tuple[int, str], tuple[int, dict[str, Any] | None]]:
    """By (partner id, order id): the points the purchase earned and the document stored with it
    (None for a plain purchase), in one statement for any number (a page of transactions)."""
    if not keys:
        return {}
    async with sql.connection(db) as conn:
        rows = await DETAILS.fetch(conn, partners=[k[0] for k in keys], orders=[k[1] for k in keys])
    return {
        (r["partner_id"], r["order_id"]): (
            r["points_earned"],
            json.loads(r["detail"]) if r["detail"] is not None else None,
        )
        for r in rows
    }


# A member's first purchase (by when it occurred) whose points are available: its lots activated
# (past the partner's return window) and not all of them refunded. Purchases earning no points
# have no lot and never qualify.
FIRST_AVAILABLE = Sql(
    "SELECT DISTINCT ON (p.member_id) p.member_id, p.entry_id, p.partner_id FROM purchases p"
    " WHERE p.member_id = ANY(CAST(:members AS bigint[])) AND p.points_earned > 0"
    " AND p.points_reversed < p.points_earned"
    " AND EXISTS (SELECT 1 FROM lots l WHERE l.id IN (p.lot_id, p.coalition_lot_id)"
    "  AND l.activated_at IS NOT NULL)"
    " ORDER BY p.member_id, p.occurred_at, p.id"
)


async def first_available_purchases(conn: DbConnection, member_ids: list[int]) -> dict[int, int]:
    """Member id -> the journal entry of their first purchase whose points became available and
    were not all refunded (members with none are absent): what referrals pay a bonus on."""
    rows = await FIRST_AVAILABLE.fetch(conn, members=member_ids)
    return {r["member_id"]: r["entry_id"] for r in rows}
