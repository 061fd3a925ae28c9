"""Erasing a member (admins): personal data gone, the books still balanced, in one transaction.

Order inside the transaction: the member row is locked (a concurrent erasure waits), then the
wallet (as every ledger operation does), live holds are released (voided: a till can no longer
capture them), points the worker has not expired yet but whose date has passed are expired as
usual (dated at their expiry, like the worker would), and whatever remains — available and
pending alike — is forfeited to each issuer's breakage account as ERASURE entries, which
settlement prices exactly like expiry. Then the members service removes the personal data and
links, and the admin audit log records who erased whom and what was forfeited.

Debts (`member_debts`, points a refund took back that the member had already spent) are left on
the books as they are: they hold no personal data, nothing can repay them any more (an erased
member earns nothing), and the creditor partner already booked its points back when the refund
was made. The wallet of a member who erased with a debt keeps that negative balance; the
invariants (`coalition audit`) hold either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.identity import propagation
from services.identity import service as identity
from services.ledger import journal, live
from services.members import erasure as member_erasure
from services.members import service as members
from shared import audit_log, clock
from shared.access import Principal
from shared.database import Database
from shared.errors import Validator
from shared.sql import DbConnection, Sql, transaction

RELEASE_HOLDS = Sql(
    "UPDATE holds SET status = 'VOIDED', closed_at = :now"
    " WHERE member_id = :m AND status = 'ACTIVE' RETURNING id"
)
OPEN_LOTS = Sql(
    "SELECT id, issuing_partner_id, remaining, expires_at FROM lots"
    " WHERE member_id = :m AND remaining > 0 AND expired_at IS NULL ORDER BY id FOR UPDATE"
)


@dataclass(frozen=True)
class Erasure:
    member_id: int
    member_number: str
    erased_at: datetime
    forfeited_points: int  # ERASURE entries only (points already past expiry count as expired)
    forfeited_by_issuer: dict[int, int]
    already_erased: bool = False


async def erase_member(db: Database, principal: Principal, member_number: str) -> Erasure:
    """Erases the member behind `member_number` (admins with `admin:partners`). Erasing an erased
    member again changes nothing and answers its first erasure's date with nothing forfeited."""
    principal.require_admin("admin:partners")
    v = Validator()
    members.check_member_number(v, member_number)
    v.raise_if_any()
    async with transaction(db) as conn:
        found = await member_erasure.lock_member(conn, member_number)
        if found is None:
            raise members.member_not_found()
        member_id, erased_at = found
        if erased_at is None:
            now = clock.now()
            by_issuer = await _forfeit_points(conn, member_id, now)
            await member_erasure.erase_personal_data(conn, member_id, member_number, now)
            forfeited = sum(by_issuer.values())
            # Heard by every watcher at commit: a partner's memberBalanceChanged ends on it (the
            # link is gone), whether or not any points were left to forfeit.
            await live.notify(conn, member_id, live.BalanceChangeReason.ERASURE, now)
            await audit_log.record_on(
                conn,
                principal,
                "member.erase",
                f"Member:{member_number}",
                {
                    "forfeited_points": forfeited,
                    "forfeited_by_issuer": {str(p): n for p, n in sorted(by_issuer.items())},
                },
            )
    if erased_at is not None:  # a retry revokes again, should the first have stopped before it
        await _revoke_tokens(db, member_id)
        return Erasure(member_id, member_number, erased_at, 0, {}, already_erased=True)
    # This process forgets at once; the others on the NOTIFY the transaction sent.
    member_erasure.forget_member(db.cache, member_number)
    await _revoke_tokens(db, member_id)
    return Erasure(member_id, member_number, now, forfeited, by_issuer)


async def _revoke_tokens(db: Database, member_id: int) -> None:
    """After the erasure commits: every refresh family and access token of the member is revoked
    on every gateway (identity's per-member mark covers any token issued before it, so one minted
    between the two commits is refused too)."""
    async with db.sessions() as session:
        notice = await identity.revoke_member_tokens(session, member_id)
        await session.commit()
    await propagation.applied_everywhere(db, notice)


async def _forfeit_points(conn: DbConnection, member_id: int, now: datetime) -> dict[int, int]:
    """Releases live holds, expires what is past its date, forfeits the rest; returns the
    points forfeited (ERASURE) per issuing partner."""
    wallet = await journal.lock_wallet(conn, member_id)
    await RELEASE_HOLDS.fetch(conn, m=member_id, now=now)
    past: dict[datetime, list[journal.LotShare]] = {}
    live: list[journal.LotShare] = []
    for row in await OPEN_LOTS.fetch(conn, m=member_id):
        share = journal.LotShare(row["id"], row["issuing_partner_id"], row["remaining"])
        if row["expires_at"] <= now:
            past.setdefault(row["expires_at"], []).append(share)
        else:
            live.append(share)
    for expires_at, lots in sorted(past.items()):
        await journal.expire_lots_now(
            conn, member_id=member_id, wallet_account_id=wallet.account_id, lots=lots, occurred_at=expires_at
        )
    await journal.forfeit_lots_now(
        conn, member_id=member_id, wallet_account_id=wallet.account_id, lots=live, occurred_at=now
    )
    by_issuer: dict[int, int] = {}
    for lot in live:
        by_issuer[lot.issuing_partner_id] = by_issuer.get(lot.issuing_partner_id, 0) + lot.points
    return by_issuer
