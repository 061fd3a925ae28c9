"""Points moved between members (a gift) and points a member gives away at a charity (a donation):
the booking. The rules (who may, how much a day) are services/engagement/transfers.py's.

A transfer moves lots, not a balance: each share of the sender's lots (available ones, first to
expire first, as a redemption takes them) leaves its lot as a TRANSFER consumption and becomes a
new lot of the receiver with the same issuer and expiry, and `source_lot_id` naming the lot it
came from. So the issuer stays the one who owes the points: redeemed at partner B, the receiver's
lot is priced like the sender's would have been (the issuer owes B its redeem price); expired, it
goes to the issuer's breakage. Settlement prices TRANSFER movements at nothing (they are neither
issued nor spent), and the audit counts a lot as issued only when it has no source.

The journal: a TRANSFER_OUT entry on the sender (their wallet gives, the receiver's wallet
receives: one balanced entry) and a TRANSFER_IN entry on the receiver with no postings, related
to it, so both histories show the move. Both entries name the coalition as their partner (no
partner's till was involved). The receiver's open debt is repaid from the new lots first, as from
any points they receive. Both wallets are locked in member-id order (no deadlock between two
members giving to each other); `points.transferred` is written for the receiver, who is mailed.

A donation is a redemption at the charity, made by the member themselves: the ledger's `spend`,
so the charity's statement shows it as points redeemed with it, priced at its redeem price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.ledger import accounts, events, journal, live, policy, spending
from services.ledger.live import BalanceChangeReason
from services.ledger.models import ConsumptionKind, EntryKind
from services.members import service as members
from services.partners import coalition
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.outbox import EventType, record_event
from shared.sql import DbConnection, Sql

SOURCES = Sql(
    "SELECT id, issuing_partner_id, earned_at, expires_at FROM lots WHERE id = ANY(CAST(:ids AS bigint[]))"
)
NEW_LOTS = Sql(
    "INSERT INTO lots (member_id, issuing_partner_id, earn_entry_id, points, remaining, earned_at,"
    " available_at, expires_at, activated_at, source_lot_id)"
    " SELECT :m, x.issuer, :e, x.points, x.points, x.earned, :now, x.expires, :now, x.source"
    " FROM unnest(CAST(:issuers AS bigint[]), CAST(:points AS bigint[]), CAST(:earned AS timestamptz[]),"
    " CAST(:expires AS timestamptz[]), CAST(:sources AS bigint[])) WITH ORDINALITY"
    " AS x(issuer, points, earned, expires, source, i) ORDER BY x.i RETURNING id, issuing_partner_id, points"
)


def refuse_debt(wallet: journal.WalletState) -> None:
    """MEMBER_HAS_DEBT: a member who owes points from a refund gives nothing away (a gift or a
    donation would let them walk away from the refund; their next points repay it first)."""
    if wallet.debt > 0:
        raise DomainError.single(
            UserErrorCode.MEMBER_HAS_DEBT,
            f"you owe {wallet.debt} points from a refund: they are repaid from your next points first",
            "points",
        )


@dataclass(frozen=True)
class TransferBooked:
    out_entry_id: int
    in_entry_id: int
    points: int
    by_issuer: dict[int, int]  # points moved, per issuer


async def lock_pair(conn: DbConnection, a: int, b: int) -> tuple[journal.WalletState, journal.WalletState]:
    """Both members' wallets, locked in member-id order; returned as (a's, b's)."""
    first, second = sorted((a, b))
    locked = {first: await journal.lock_wallet(conn, first), second: await journal.lock_wallet(conn, second)}
    return locked[a], locked[b]


async def book_transfer(
    db: Database,
    conn: DbConnection,
    *,
    sender_id: int,
    receiver_id: int,
    points: int,
    now: datetime,
    reference: str,
    message: str | None,
) -> TransferBooked:
    """Moves `points` of the sender's available lots to the receiver, in the caller's
    transaction. DomainError INSUFFICIENT_POINTS (held and pending points do not count) or
    MEMBER_HAS_DEBT (the sender owes points: a gift cannot leave a debt unpaid)."""
    sender, receiver = await lock_pair(conn, sender_id, receiver_id)
    refuse_debt(sender)
    shares = await spending.reserve(conn, sender_id, sender, points, now)
    issuer = await coalition.coalition_issuer_id(conn)
    out_entry = await journal.post_entry(
        conn,
        kind=EntryKind.TRANSFER_OUT,
        member_id=sender_id,
        partner_id=issuer,
        points=-points,
        occurred_at=now,
        postings=[(sender.account_id, -points), (receiver.account_id, points)],
        order_id=reference,
    )
    in_entry = await journal.post_entry(
        conn,
        kind=EntryKind.TRANSFER_IN,
        member_id=receiver_id,
        partner_id=issuer,
        points=points,
        occurred_at=now,
        postings=[],
        order_id=reference,
        related_entry_id=out_entry,
    )
    await journal.move_lots(
        conn,
        entry_id=out_entry,
        member_id=sender_id,
        kind=ConsumptionKind.TRANSFER,
        counterparty_partner_id=None,
        shares=shares,
        occurred_at=now,
    )
    source = {r["id"]: r for r in await SOURCES.fetch(conn, ids=[s.lot_id for s in shares])}
    new_lots = await NEW_LOTS.fetch(
        conn,
        m=receiver_id,
        e=in_entry,
        now=now,
        issuers=[s.issuing_partner_id for s in shares],
        points=[s.points for s in shares],
        earned=[source[s.lot_id]["earned_at"] for s in shares],
        expires=[source[s.lot_id]["expires_at"] for s in shares],
        sources=[s.lot_id for s in shares],
    )
    await journal.change_wallet(conn, sender_id, balance=-points)
    await journal.change_wallet(conn, receiver_id, balance=points)
    await journal.repay_debt(
        conn,
        member_id=receiver_id,
        entry_id=in_entry,
        debt=receiver.debt,
        sources=[journal.LotShare(r["id"], r["issuing_partner_id"], r["points"]) for r in new_lots],
        occurred_at=now,
    )
    numbers = await members.member_numbers(conn, [sender_id, receiver_id])
    await record_event(
        conn,
        EventType.POINTS_TRANSFERRED,
        {
            "fromMemberNumber": numbers[sender_id],
            "toMemberNumber": numbers[receiver_id],
            "points": points,
            "message": message,
            "transactionId": events.transaction_gid(in_entry),
            "senderTransactionId": events.transaction_gid(out_entry),
        },
        member_id=receiver_id,
        partner_ids=(),  # between members: no partner's till was involved
        occurred_at=now,
    )
    await live.notify(conn, sender_id, BalanceChangeReason.TRANSFER, now)
    await live.notify(conn, receiver_id, BalanceChangeReason.TRANSFER, now)
    by_issuer: dict[int, int] = {}
    for s in shares:
        by_issuer[s.issuing_partner_id] = by_issuer.get(s.issuing_partner_id, 0) + s.points
    return TransferBooked(out_entry, in_entry, points, by_issuer)


async def book_donation(
    db: Database,
    conn: DbConnection,
    *,
    member_id: int,
    charity_id: int,
    points: int,
    order_id: str,
    now: datetime,
) -> dict[str, Any]:
    """Spends `points` of the member's available points at the charity (a REDEEM entry and
    REDEMPTION movements with the charity as counterparty), in the caller's transaction, under the
    member's wallet lock. DomainError MEMBER_HAS_DEBT or INSUFFICIENT_POINTS. The spend's answer
    (redemption_id, transaction_id, points, value)."""
    wallet = await journal.lock_wallet(conn, member_id)
    refuse_debt(wallet)
    shares = await spending.reserve(conn, member_id, wallet, points, now)
    await accounts.open_partner_accounts(conn, charity_id)
    spent = await spending.spend(
        conn,
        partner_id=charity_id,
        member_id=member_id,
        wallet=wallet,
        shares=shares,
        order_id=order_id,
        now=now,
        policy=await policy.current(db, conn),
    )
    number = (await members.member_numbers(conn, [member_id]))[member_id]
    await record_event(
        conn,
        EventType.POINTS_DONATED,
        {
            "memberNumber": number,
            "charityId": events.partner_gid(charity_id),
            "points": points,
            "transactionId": events.transaction_gid(spent["transaction_id"]),
        },
        member_id=member_id,
        partner_ids=(),  # the charity hears the spend as points.redeemed
        occurred_at=now,
    )
    await live.notify(conn, member_id, BalanceChangeReason.REDEEM, now)
    return spent
