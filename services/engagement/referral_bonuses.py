"""The referral bonus: paid to the referrer, by the worker job `referral-bonuses`, once the
referred member's first qualifying purchase is AVAILABLE.

Which purchase qualifies: the referred member's first purchase (at any partner, by when it
occurred) whose points lot the ledger activated (past the partner's return window) and that was
not refunded in full; a purchase refunded in full inside its window does not count, and a later
one may qualify instead. A refund after the bonus was paid does not take the bonus back.

The bonus is REFERRAL_BONUS_POINTS (0: none paid, referrals wait), issued by the coalition
(DESIGN.md, Rulings) through the ledger's `credit_coalition_points`: one REFERRAL entry and a
coalition lot, available at once, settled like every coalition lot (redeemed at a partner, the
coalition owes that partner its redeem price). Its transaction writes points.earned (source
REFERRAL, by the ledger) and referral.rewarded (here).

Once per referred member, with any number of workers: a round takes unpaid referrals with
`FOR UPDATE SKIP LOCKED` (another worker's rows are skipped, and a row paid meanwhile no longer
matches), and `referral_bonuses` is unique per referral and per referred member, so even a bug
in that locking could not pay twice: the second insert would roll its whole batch back. A round
looks at the least recently checked referrals first, each at most once a minute (RECHECK), so
a referral whose member never buys does not hold up the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.ledger import service as ledger
from services.members import service as members
from shared import sql
from shared.database import Database
from shared.ids import to_global_id
from shared.outbox import EventType, record_event
from shared.settings import get_settings
from shared.sql import Sql

# A referral is looked at again at most this often: a worker's round goes on while its batches
# find rows, so one that looked at every unpaid referral just now must find none and stop.
RECHECK = timedelta(minutes=1)
DUE = Sql(
    "SELECT id, referrer_member_id, referred_member_id FROM referrals WHERE closed_at IS NULL"
    " AND (checked_at IS NULL OR checked_at <= :seen) ORDER BY checked_at NULLS FIRST, id"
    " LIMIT :batch FOR UPDATE SKIP LOCKED"
)
CHECKED = Sql("UPDATE referrals SET checked_at = :now WHERE id = ANY(CAST(:ids AS bigint[]))")
CLOSE = Sql("UPDATE referrals SET closed_at = :now WHERE id = :id")
PAID = Sql(
    "INSERT INTO referral_bonuses (referral_id, referred_member_id, referrer_member_id, points,"
    " entry_id, qualifying_entry_id, rewarded_at) VALUES (:r, :referred, :referrer, :points, :e, :q, :now)"
)


@dataclass(frozen=True)
class BonusRound:
    checked: int  # unpaid referrals looked at
    paid: int
    points: int


async def pay_referral_bonuses(db: Database, now: datetime, batch: int) -> BonusRound:
    """One batch of unpaid referrals, in one transaction: each whose referred member has a
    qualifying purchase pays its referrer the bonus; every one looked at is marked checked."""
    points = get_settings().referral_bonus_points
    if points <= 0:
        return BonusRound(0, 0, 0)
    paid = 0
    async with sql.transaction(db) as conn:
        due = await DUE.fetch(conn, batch=batch, seen=now - RECHECK)
        if not due:
            return BonusRound(0, 0, 0)
        qualifying = await ledger.first_available_purchases(conn, [r["referred_member_id"] for r in due])
        payable = sorted(
            (r for r in due if r["referred_member_id"] in qualifying),
            key=lambda r: (r["referrer_member_id"], r["id"]),  # wallet locks in one order
        )
        numbers = await members.member_numbers(
            conn, sorted({m for r in payable for m in (r["referrer_member_id"], r["referred_member_id"])})
        )
        for r in payable:
            credit = await ledger.credit_coalition_points(
                db,
                conn,
                member_id=r["referrer_member_id"],
                points=points,
                reference=f"referral:{r['id']}",
                now=now,
            )
            await CLOSE.execute(conn, id=r["id"], now=now)
            if credit is None:  # the referrer was erased: nobody to pay, off the queue
                continue
            qualifying_entry = qualifying[r["referred_member_id"]]
            await PAID.execute(
                conn,
                r=r["id"],
                referred=r["referred_member_id"],
                referrer=r["referrer_member_id"],
                points=points,
                e=credit.entry_id,
                q=qualifying_entry,
                now=now,
            )
            await record_event(
                conn,
                EventType.REFERRAL_REWARDED,
                {
                    "memberNumber": numbers[r["referrer_member_id"]],
                    "referredMemberNumber": numbers[r["referred_member_id"]],
                    "points": points,
                    "transactionId": to_global_id("Transaction", credit.entry_id),
                    "qualifyingTransactionId": to_global_id("Transaction", qualifying_entry),
                },
                member_id=r["referrer_member_id"],
                occurred_at=now,
            )
            paid += 1
        await CHECKED.execute(conn, ids=[r["id"] for r in due], now=now)
    return BonusRound(checked=len(due), paid=paid, points=paid * points)
