"""Budgets and per-member limits of promotions, exact under concurrency.

Everything here runs in the earn's own transaction, in its decide path, after the member's wallet
row is locked (`ledger.Decide`), so:

- a per-member limit is exact: the member's earns serialize on the wallet lock, so counting their
  awards not refunded (`promotion_awards`) and inserting this one cannot interleave with another;
- a budget is exact: the points are reserved by one guarded statement
  `UPDATE promotions SET spent_points = spent_points + n WHERE spent_points + n <= budget_points`,
  which row-locks the promotion until the earn commits; concurrent earns of different members queue
  on that row and re-check the guard on the committed value. All or nothing: a promotion whose
  item does not fit in what is left of its budget does not apply to the purchase at all (no
  partial award), and the engine runs again without it (another promotion may then win).
  The points reserved are the promotion's item in the breakdown (before a later cap trims the
  purchase, if one does).

A full refund releases the purchase's awards: their points go back to the budget and they no
longer count toward the per-member limit (`release`). A partial refund releases nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from services.earning.engine import Result
from services.earning.promotions import Promotion
from shared.sql import DbConnection, Sql

RESERVE = Sql(
    "UPDATE promotions SET spent_points = spent_points + CAST(:n AS bigint)"
    " WHERE id = :id AND archived_at IS NULL"
    " AND (budget_points IS NULL OR spent_points + CAST(:n AS bigint) <= budget_points)"
    " RETURNING spent_points"
)
UNRESERVE = Sql("UPDATE promotions SET spent_points = spent_points - CAST(:n AS bigint) WHERE id = :id")
FITS = Sql(
    "SELECT budget_points IS NULL OR spent_points + CAST(:n AS bigint) <= budget_points"
    " FROM promotions WHERE id = :id AND archived_at IS NULL"
)
AWARDS = Sql(
    "SELECT promotion_id, count(*) AS n FROM promotion_awards"
    " WHERE member_id = :m AND promotion_id = ANY(CAST(:ids AS bigint[])) AND refunded_at IS NULL"
    " GROUP BY promotion_id"
)
AWARD = Sql(
    "INSERT INTO promotion_awards (promotion_id, member_id, partner_id, order_id, points)"
    " SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:members AS bigint[]),"
    " CAST(:partners AS bigint[]), CAST(:orders AS text[]), CAST(:points AS bigint[]))"
    # An order id already recorded: the earn statement that follows refuses it (DUPLICATE_ORDER)
    # and the savepoint around both undoes this purchase's reservations.
    " ON CONFLICT DO NOTHING"
)
RELEASE = Sql(
    "WITH r AS (UPDATE promotion_awards SET refunded_at = now()"
    "  WHERE partner_id = :p AND order_id = :order AND refunded_at IS NULL"
    "  RETURNING promotion_id, points),"
    " s AS (SELECT promotion_id, sum(points) AS points FROM r GROUP BY promotion_id),"
    # Budget rows locked in id order, as earns reserve them: a refund and an earn touching the
    # same two promotions cannot deadlock.
    " l AS (SELECT id FROM promotions WHERE id IN (SELECT promotion_id FROM s)"
    "  AND budget_points IS NOT NULL ORDER BY id FOR UPDATE)"
    " UPDATE promotions SET spent_points = promotions.spent_points - s.points"
    " FROM s WHERE promotions.id = s.promotion_id AND promotions.id IN (SELECT id FROM l)"
    " RETURNING promotions.id"
)

Evaluate = Callable[[frozenset[int]], Result]
Fits = Callable[[DbConnection, Promotion, int], Awaitable[bool]]


async def limited(conn: DbConnection, member_id: int, promos: Sequence[Promotion]) -> frozenset[int]:
    """The promotions whose per-member limit the member has reached (awards not refunded)."""
    with_limit = {p.id: p.per_member_limit for p in promos if p.per_member_limit is not None}
    if not with_limit:
        return frozenset()
    rows = await AWARDS.fetch(conn, m=member_id, ids=list(with_limit))
    return frozenset(r["promotion_id"] for r in rows if r["n"] >= (with_limit[r["promotion_id"]] or 0))


async def reserve(conn: DbConnection, promo: Promotion, points: int) -> bool:
    return await RESERVE.fetchrow(conn, id=promo.id, n=points) is not None


async def fits(conn: DbConnection, promo: Promotion, points: int) -> bool:
    """What `reserve` would answer now, reserving nothing (previewEarn)."""
    return bool(await FITS.fetchval(conn, id=promo.id, n=points))


async def settle(
    conn: DbConnection, evaluate: Evaluate, excluded: frozenset[int], take: Fits, *, undo: bool
) -> Result:
    """Evaluates, then reserves each applied budgeted promotion's points (`take`); one that does not
    fit is excluded and the purchase evaluated again (reservations made meanwhile undone when `undo`).
    Ends: each round excludes one more promotion."""
    while True:
        result = evaluate(excluded)
        taken: list[tuple[Promotion, int]] = []
        failed: Promotion | None = None
        for promo, points in result.promotions:
            if promo.budget_points is None or points <= 0:
                continue
            if not await take(conn, promo, points):
                failed = promo
                break
            taken.append((promo, points))
        if failed is None:
            return result
        if undo:
            for promo, points in taken:
                await UNRESERVE.execute(conn, id=promo.id, n=points)
        excluded = excluded | {failed.id}


async def record_awards(
    conn: DbConnection, result: Result, *, member_id: int, partner_id: int, order_id: str
) -> None:
    awards = [(p, pts) for p, pts in result.promotions]
    if not awards:
        return
    await AWARD.execute(
        conn,
        ids=[p.id for p, _ in awards],
        members=[member_id] * len(awards),
        partners=[partner_id] * len(awards),
        orders=[order_id] * len(awards),
        points=[pts for _, pts in awards],
    )


async def release(conn: DbConnection, partner_id: int, order_id: str) -> None:
    """In a full refund's transaction: the purchase's awards back to their budgets, once."""
    await RELEASE.fetch(conn, p=partner_id, order=order_id)
