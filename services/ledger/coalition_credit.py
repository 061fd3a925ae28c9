"""Points credited to a member outside any purchase: referral bonuses (issued by the coalition)
and activities (a review, a survey, a birthday: issued by the partner that defined the activity,
or by the coalition for the coalition's own activities).

The ledger knows no rules: the caller (services/engagement: referral_bonuses.py, activities.py)
decides who gets how many points and why, and names the reason with a `reference` (e.g.
`referral:42`, `activity:REVIEW`), stored as the entry's order id so the member's history, a
partner's export and an auditor can say what the entry was for. What the ledger guarantees is the
booking: one balanced entry (the issuer's issuance account gives, the member's wallet receives),
one lot issued by the issuer, available at once (there is nothing to refund, so no return window)
and expiring by the expiry policy from when it occurred, the member's open debt repaid from it
first (a credit extends no other lot's expiry: activity-based extension follows purchases and
redemptions), and points.earned (source REFERRAL or ACTIVITY) in the same transaction. A coalition
credit's `coalition_points` is all of its points, which keeps the audit's "coalition-issued points
equal the coalition's lots" true; a partner's is 0, and settlement charges the partner its issue
fee for them as for a purchase's points. Either lot is priced like any other when redeemed or
expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.ledger import accounts, events, journal, live, policy
from services.ledger.live import BalanceChangeReason
from services.ledger.models import AccountKind, EntryKind
from services.members import service as members
from services.partners import coalition
from shared.database import Database
from shared.outbox import EventType, record_event
from shared.sql import DbConnection, Sql

LOT = Sql(
    "INSERT INTO lots (member_id, issuing_partner_id, earn_entry_id, points, remaining, earned_at,"
    " available_at, expires_at, activated_at)"
    " VALUES (:m, :issuer, :e, :points, :points, :earned, :now, :expires, :now) RETURNING id"
)
ERASED = Sql("SELECT erased_at IS NOT NULL FROM members WHERE id = :m")


@dataclass(frozen=True)
class Credit:
    entry_id: int
    lot_id: int
    issuer_id: int  # the coalition's partners id
    repaid: int  # of the points, those that went to repay the member's debt


async def credit_coalition_points(
    db: Database,
    conn: DbConnection,
    *,
    member_id: int,
    points: int,
    reference: str,
    now: datetime,
    kind: EntryKind = EntryKind.REFERRAL,
) -> Credit | None:
    """Credits `points` (> 0) issued by the coalition to the member, in the caller's transaction
    (which then owns the rest of the change: e.g. recording that the bonus is paid). Takes the
    member's wallet lock. None for an erased member, who earns nothing (nothing is written)."""
    return await credit_points(
        db, conn, member_id=member_id, points=points, reference=reference, now=now, kind=kind
    )


async def credit_points(
    db: Database,
    conn: DbConnection,
    *,
    member_id: int,
    points: int,
    reference: str,
    now: datetime,
    kind: EntryKind,
    issuer_id: int | None = None,
    occurred_at: datetime | None = None,
) -> Credit | None:
    """Credits `points` (> 0) issued by `issuer_id` (a partner; None: the coalition) to the member,
    in the caller's transaction, under the member's wallet lock (taken here; the caller may hold
    it already). `occurred_at` (default `now`) dates the entry and the lot and starts its expiry.
    None for an erased member, who earns nothing (nothing is written)."""
    if points <= 0:
        raise ValueError(f"a credit must be positive, not {points}")
    occurred_at = occurred_at or now
    wallet = await journal.lock_wallet(conn, member_id)
    if await ERASED.fetchval(conn, m=member_id):
        return None
    coalition_issuer = await coalition.coalition_issuer_id(conn)
    issuer = coalition_issuer if issuer_id is None else issuer_id
    by_coalition = issuer == coalition_issuer
    await accounts.open_partner_accounts(conn, issuer)
    issuance = await accounts.partner_account(conn, issuer, AccountKind.PARTNER_ISSUANCE)
    entry_id = await journal.post_entry(
        conn,
        kind=kind,
        member_id=member_id,
        partner_id=issuer,
        points=points,
        occurred_at=occurred_at,
        postings=[(issuance, -points), (wallet.account_id, points)],
        order_id=reference,
        coalition_points=points if by_coalition else 0,
    )
    terms = await policy.current(db, conn)
    lot_id = int(
        await LOT.fetchval(
            conn,
            m=member_id,
            issuer=issuer,
            e=entry_id,
            points=points,
            earned=occurred_at,
            now=now,
            expires=terms.expiry_for(occurred_at, now),
        )
    )
    await journal.change_wallet(conn, member_id, balance=points)
    repaid = await journal.repay_debt(
        conn,
        member_id=member_id,
        entry_id=entry_id,
        debt=wallet.debt,
        sources=[journal.LotShare(lot_id, issuer, points)],
        occurred_at=now,
    )
    number = (await members.member_numbers(conn, [member_id]))[member_id]
    await record_event(
        conn,
        EventType.POINTS_EARNED,
        events.points_earned(
            member_number=number,
            partner_id=issuer,
            entry_id=entry_id,
            points=points,
            status=events.EarnStatus.AVAILABLE,
            order_id=reference,
            source=events.source_of(kind),
            coalition_points=points if by_coalition else 0,
        ),
        member_id=member_id,
        # The coalition is no partner with webhooks (the member hears of it); a partner hears of
        # the points it issued.
        partner_ids=() if by_coalition else (issuer,),
        occurred_at=occurred_at,
    )
    await live.notify(conn, member_id, BalanceChangeReason.EARN, now)
    return Credit(entry_id=entry_id, lot_id=lot_id, issuer_id=issuer, repaid=repaid)
