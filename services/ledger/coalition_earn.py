"""Coalition-issued points in an earn: the coalition's share booked with the coalition as issuer.

A purchase may earn points of which some are funded by the coalition (a coalition promotion:
`EarnDecision.coalition_points`). It is still one journal entry: the member's wallet gets all the
points, the partner's issuance account gives `points - coalition_points` and the coalition's
issuance account `coalition_points`, and there are two lots with the same dates, the partner's and
the coalition's (each lot has exactly one issuer, which is what settlement prices by). Such an earn
takes the general path: the one-statement path books one issuer only, and keeping it so keeps the
usual earn as fast as it was.

The split is written right after the earn statement, in the same transaction, by adjusting the
rows that statement has just written (the partner's posting and lot) and adding the coalition's:
nothing committed is ever changed, so the ledger stays append-only as anyone can see it.
"""

from __future__ import annotations

from services.ledger import accounts, journal
from services.ledger.models import AccountKind
from services.partners import coalition
from shared.sql import DbConnection, Sql

MOVE_POSTING = Sql("UPDATE postings SET account_id = :to WHERE entry_id = :e AND account_id = :frm")
SHRINK_POSTING = Sql("UPDATE postings SET amount = amount + :cp WHERE entry_id = :e AND account_id = :a")
ADD_POSTING = Sql("INSERT INTO postings (entry_id, account_id, amount) VALUES (:e, :a, :amount)")
GIVE_LOT = Sql("UPDATE lots SET issuing_partner_id = :c WHERE id = :lot")
SHRINK_LOT = Sql("UPDATE lots SET points = points - :cp, remaining = remaining - :cp WHERE id = :lot")
COALITION_LOT = Sql(
    "INSERT INTO lots (member_id, issuing_partner_id, earn_entry_id, points, remaining, earned_at,"
    " available_at, expires_at, activated_at)"
    " SELECT member_id, :c, earn_entry_id, :cp, :cp, earned_at, available_at, expires_at, activated_at"
    " FROM lots WHERE id = :lot RETURNING id"
)
# Found by its partner and order id (the unique index; the audit checks the entry names them):
# purchases has no index on entry_id, and this runs under the member's wallet lock.
MARK_PURCHASE = Sql(
    "UPDATE purchases SET coalition_points = :cp, coalition_lot_id = :clot, lot_id = :plot"
    " WHERE partner_id = :p AND order_id = (SELECT order_id FROM journal_entries WHERE id = :e)"
    " AND entry_id = :e"
)
MARK_ENTRY = Sql("UPDATE journal_entries SET coalition_points = :cp WHERE id = :e")


def check_share(points: int, coalition_points: int) -> None:
    """0 <= coalition_points <= points: a caller's bug otherwise, not a member's input."""
    if coalition_points < 0 or coalition_points > points:
        raise ValueError(f"coalition_points {coalition_points} must be between 0 and points {points}")


def refund_share(points_earned: int, coalition_points: int, reversed_before: int, points: int) -> int:
    """The coalition's part of a refund taking back `points` after `reversed_before`: cumulative
    and proportional, floor(coalition_points x reversed / points_earned), the remainder being the
    partner's; so a full refund gives the coalition back exactly its share, whatever the steps."""
    if coalition_points == 0 or points_earned == 0:
        return 0
    after = coalition_points * (reversed_before + points) // points_earned
    return after - coalition_points * reversed_before // points_earned


async def split_earn(
    conn: DbConnection,
    *,
    partner_id: int,
    entry_id: int,
    lot_id: int,
    points: int,
    coalition_points: int,
) -> list[journal.LotShare]:
    """Gives `coalition_points` of the earn just booked (entry, lot of `points`) to the coalition.
    Returns the purchase's lots as shares (partner's first), for a debt repayment to draw on."""
    check_share(points, coalition_points)
    issuer = await coalition.coalition_issuer_id(conn)
    await accounts.open_partner_accounts(conn, issuer)
    partner_issuance = await accounts.partner_account(conn, partner_id, AccountKind.PARTNER_ISSUANCE)
    coalition_issuance = await accounts.partner_account(conn, issuer, AccountKind.PARTNER_ISSUANCE)
    if coalition_points == points:  # all of it is the coalition's: the one lot and posting move over
        await MOVE_POSTING.execute(conn, to=coalition_issuance, e=entry_id, frm=partner_issuance)
        await GIVE_LOT.execute(conn, c=issuer, lot=lot_id)
        await MARK_PURCHASE.execute(
            conn, cp=coalition_points, clot=lot_id, plot=None, e=entry_id, p=partner_id
        )
        shares = [journal.LotShare(lot_id, issuer, coalition_points)]
    else:
        await SHRINK_POSTING.execute(conn, cp=coalition_points, e=entry_id, a=partner_issuance)
        await ADD_POSTING.execute(conn, e=entry_id, a=coalition_issuance, amount=-coalition_points)
        await SHRINK_LOT.execute(conn, cp=coalition_points, lot=lot_id)
        coalition_lot = int(await COALITION_LOT.fetchval(conn, c=issuer, cp=coalition_points, lot=lot_id))
        await MARK_PURCHASE.execute(
            conn, cp=coalition_points, clot=coalition_lot, plot=lot_id, e=entry_id, p=partner_id
        )
        shares = [
            journal.LotShare(lot_id, partner_id, points - coalition_points),
            journal.LotShare(coalition_lot, issuer, coalition_points),
        ]
    await MARK_ENTRY.execute(conn, cp=coalition_points, e=entry_id)
    return shares
