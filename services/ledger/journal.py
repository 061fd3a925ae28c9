"""The ledger's write primitives: wallet locks, balanced entries, lot movements, debts.

Every function here runs inside the caller's transaction and assumes the member's wallet row is
already locked (`lock_wallet`), which is what serialises all work on one member's points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.ledger import accounts
from services.ledger.models import AccountKind, ConsumptionKind, EntryKind
from shared.sql import DbConnection, Sql


@dataclass(frozen=True)
class WalletState:
    account_id: int
    balance: int
    debt: int


@dataclass(frozen=True)
class LotShare:
    """Points to take from (positive) or give back to (negative) one lot."""

    lot_id: int
    issuing_partner_id: int
    points: int


LOCK_WALLET = Sql("SELECT account_id, balance, debt FROM wallets WHERE member_id = :m FOR UPDATE")

POST_ENTRY = Sql(
    "WITH e AS (INSERT INTO journal_entries"
    " (kind, member_id, partner_id, points, order_id, related_entry_id, occurred_at, coalition_points)"
    " VALUES (:kind, :m, :p, :points, :order_id, :related, :at, :cp) RETURNING id),"
    " p AS (INSERT INTO postings (entry_id, account_id, amount)"
    " SELECT e.id, x.account_id, x.amount FROM e,"
    " unnest(CAST(:accounts AS bigint[]), CAST(:amounts AS bigint[])) AS x(account_id, amount))"
    " SELECT id FROM e"
)

MOVE_LOTS = Sql(
    "WITH x AS (SELECT * FROM unnest(CAST(:lots AS bigint[]), CAST(:issuers AS bigint[]),"
    " CAST(:points AS bigint[])) AS x(lot_id, issuer, points)),"
    " c AS (INSERT INTO lot_consumptions (entry_id, lot_id, member_id, kind, points,"
    " issuing_partner_id, counterparty_partner_id, occurred_at)"
    " SELECT CAST(:entry AS bigint), lot_id, CAST(:m AS bigint), CAST(:kind AS text), points,"
    " issuer, CAST(:cp AS bigint), CAST(:at AS timestamptz) FROM x)"
    " UPDATE lots SET remaining = lots.remaining - x.points FROM x WHERE lots.id = x.lot_id"
)

CHANGE_WALLET = Sql(
    "UPDATE wallets SET balance = balance + :balance, debt = debt + :debt WHERE member_id = :m"
)

# A lot's free points are what it holds minus what live holds reserve of it.
SPENDABLE = """
SELECT id, issuing_partner_id, free AS remaining FROM (
  SELECT l.id, l.issuing_partner_id, l.available_at, l.expires_at,
         l.remaining - COALESCE(h.held, 0) AS free,
         sum(l.remaining - COALESCE(h.held, 0))
           OVER (ORDER BY l.available_at > :now, l.expires_at, l.id) AS running
  FROM lots l
  LEFT JOIN (
    SELECT hl.lot_id, SUM(hl.points) AS held
    FROM holds h JOIN hold_lots hl ON hl.hold_id = h.id
    WHERE h.member_id = :m AND h.status = 'ACTIVE' AND h.expires_at > :now
    GROUP BY hl.lot_id
  ) h ON h.lot_id = l.id
  WHERE l.member_id = :m AND l.remaining > 0 AND l.expires_at > :now AND l.expired_at IS NULL
    AND l.id <> ALL(CAST(:exclude AS bigint[])) {pending}
) s
WHERE free > 0 AND running - free < :needed
ORDER BY available_at > :now, expires_at, id
"""
SPENDABLE_AVAILABLE = Sql(SPENDABLE.format(pending="AND l.available_at <= :now"))
SPENDABLE_ANY = Sql(SPENDABLE.format(pending=""))

OPEN_DEBTS = Sql(
    "SELECT id, creditor_partner_id, remaining FROM member_debts"
    " WHERE member_id = :m AND remaining > 0 ORDER BY id FOR UPDATE"
)
REPAY_DEBT = Sql("UPDATE member_debts SET remaining = remaining - :points WHERE id = :id")
MARK_EXPIRED = Sql("UPDATE lots SET expired_at = :at WHERE id = ANY(CAST(:ids AS bigint[]))")


async def lock_wallet(conn: DbConnection, member_id: int) -> WalletState:
    """Locks the member's wallet row, opening the wallet first if the ledger never booked for
    them (a second try covers a racing opener whose transaction rolled back)."""
    for _attempt in range(3):
        row = await LOCK_WALLET.fetchrow(conn, m=member_id)
        if row is not None:
            return WalletState(row["account_id"], row["balance"], row["debt"])
        await accounts.open_wallets(conn, [member_id])
    raise AssertionError(f"member {member_id}: no wallet could be opened")


async def post_entry(
    conn: DbConnection,
    *,
    kind: str,
    member_id: int,
    partner_id: int,
    points: int,
    occurred_at: datetime,
    postings: list[tuple[int, int]],
    order_id: str | None = None,
    related_entry_id: int | None = None,
    coalition_points: int = 0,
) -> int:
    """One journal entry and its postings in one statement; postings must sum to zero.
    `coalition_points`: of `points`, those the coalition issued or takes back (see models)."""
    if sum(amount for _, amount in postings) != 0:
        raise AssertionError(f"unbalanced {kind} entry: {postings}")
    postings = [(account, amount) for account, amount in postings if amount != 0]
    return int(
        await POST_ENTRY.fetchval(
            conn,
            kind=kind,
            m=member_id,
            p=partner_id,
            points=points,
            order_id=order_id,
            related=related_entry_id,
            at=occurred_at,
            cp=coalition_points,
            accounts=[a for a, _ in postings],
            amounts=[x for _, x in postings],
        )
    )


async def move_lots(
    conn: DbConnection,
    *,
    entry_id: int,
    member_id: int,
    kind: str,
    counterparty_partner_id: int | None,
    shares: list[LotShare],
    occurred_at: datetime,
) -> None:
    """Takes points out of lots (or puts them back) and records each movement for settlement."""
    shares = [s for s in shares if s.points != 0]
    if not shares:
        return
    await MOVE_LOTS.execute(
        conn,
        lots=[s.lot_id for s in shares],
        issuers=[s.issuing_partner_id for s in shares],
        points=[s.points for s in shares],
        entry=entry_id,
        m=member_id,
        kind=kind,
        cp=counterparty_partner_id,
        at=occurred_at,
    )


async def change_wallet(conn: DbConnection, member_id: int, *, balance: int = 0, debt: int = 0) -> None:
    if balance or debt:
        await CHANGE_WALLET.execute(conn, balance=balance, debt=debt, m=member_id)


async def spendable_lots(
    conn: DbConnection,
    member_id: int,
    needed: int,
    now: datetime,
    *,
    include_pending: bool = False,
    exclude_lots: list[int] | None = None,
) -> list[LotShare]:
    """Shares of the member's lots covering up to `needed` points, first to expire first.

    With `include_pending`, available lots still come first and pending ones after them: a
    refund's clawback reaches into points still in their return window only when it must.
    """
    if needed <= 0:
        return []
    query = SPENDABLE_ANY if include_pending else SPENDABLE_AVAILABLE
    rows = await query.fetch(conn, m=member_id, now=now, needed=needed, exclude=exclude_lots or [])
    shares: list[LotShare] = []
    left = needed
    for row in rows:
        take = min(row["remaining"], left)
        shares.append(LotShare(row["id"], row["issuing_partner_id"], take))
        left -= take
    return shares


async def repay_debt(
    conn: DbConnection,
    *,
    member_id: int,
    entry_id: int,
    debt: int,
    sources: list[LotShare],
    occurred_at: datetime,
) -> int:
    """Uses newly credited points (`sources`) to repay open debts, oldest first.

    The wallet balance does not change: the debt was already a negative balance. Returns the
    points repaid.
    """
    pool = [[s, s.points] for s in sources if s.points > 0]
    if debt <= 0 or not pool:
        return 0
    repaid = 0
    for debt_row in await OPEN_DEBTS.fetch(conn, m=member_id):
        owed, shares = debt_row["remaining"], []
        for item in pool:
            source, left = item
            take = min(owed, left)
            if take > 0:
                shares.append(LotShare(source.lot_id, source.issuing_partner_id, take))
                item[1] -= take
                owed -= take
        taken = sum(s.points for s in shares)
        if taken:
            await move_lots(
                conn,
                entry_id=entry_id,
                member_id=member_id,
                kind=ConsumptionKind.DEBT_REPAYMENT,
                counterparty_partner_id=debt_row["creditor_partner_id"],
                shares=shares,
                occurred_at=occurred_at,
            )
            await REPAY_DEBT.execute(conn, points=taken, id=debt_row["id"])
            repaid += taken
        if all(left == 0 for _, left in pool):
            break
    await change_wallet(conn, member_id, debt=-repaid)
    return repaid


async def expire_lots_now(
    conn: DbConnection,
    *,
    member_id: int,
    wallet_account_id: int,
    lots: list[LotShare],
    occurred_at: datetime,
) -> None:
    """Posts the expiry of what these lots hold: wallet → each issuer's breakage account."""
    await _to_breakage(
        conn,
        member_id=member_id,
        wallet_account_id=wallet_account_id,
        lots=lots,
        occurred_at=occurred_at,
        entry_kind=EntryKind.EXPIRE,
        consumption_kind=ConsumptionKind.EXPIRY,
    )


async def forfeit_lots_now(
    conn: DbConnection,
    *,
    member_id: int,
    wallet_account_id: int,
    lots: list[LotShare],
    occurred_at: datetime,
) -> None:
    """Posts the forfeiture of an erased member's points: the same movement as an expiry (wallet →
    each issuer's breakage account, the lot closed), under its own kinds so statements and the
    member's export can tell the two apart while settlement prices both as breakage."""
    await _to_breakage(
        conn,
        member_id=member_id,
        wallet_account_id=wallet_account_id,
        lots=lots,
        occurred_at=occurred_at,
        entry_kind=EntryKind.ERASURE,
        consumption_kind=ConsumptionKind.ERASURE,
    )


async def _to_breakage(
    conn: DbConnection,
    *,
    member_id: int,
    wallet_account_id: int,
    lots: list[LotShare],
    occurred_at: datetime,
    entry_kind: EntryKind,
    consumption_kind: ConsumptionKind,
) -> None:
    """One entry per issuer, wallet → its breakage account; the lots' movements; lots closed."""
    by_issuer: dict[int, list[LotShare]] = {}
    for lot in lots:
        if lot.points > 0:
            by_issuer.setdefault(lot.issuing_partner_id, []).append(lot)
    for issuer, issuer_lots in sorted(by_issuer.items()):
        points = sum(lot.points for lot in issuer_lots)
        breakage = await accounts.partner_account(conn, issuer, AccountKind.PARTNER_BREAKAGE)
        entry_id = await post_entry(
            conn,
            kind=entry_kind,
            member_id=member_id,
            partner_id=issuer,
            points=-points,
            occurred_at=occurred_at,
            postings=[(wallet_account_id, -points), (breakage, points)],
        )
        await move_lots(
            conn,
            entry_id=entry_id,
            member_id=member_id,
            kind=consumption_kind,
            counterparty_partner_id=None,
            shares=issuer_lots,
            occurred_at=occurred_at,
        )
        await MARK_EXPIRED.execute(conn, at=occurred_at, ids=[lot.lot_id for lot in issuer_lots])
        await change_wallet(conn, member_id, balance=-points)
