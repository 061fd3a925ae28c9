"""A member's right to erasure, the members' half: personal data gone, the number kept.

The ledger's `services.ledger.erasure.erase_member` runs the whole erasure in one transaction:
it forfeits the points, then calls `erase_personal_data` here on the same connection. What goes:
the email, the password (hash and date), the language, the birth date, every link to a partner
with the partner's customer ref, and whatever one-time codes the member had
(`revoke_member_codes`); a trigger clears their survey comments and activity data
(services/engagement/activity_models.py). What stays: the row, its
id and member number (the opaque key the books are kept under), created_at, and erased_at.

Every process caches "member at partner" answers (`service.cached_member_at_partner`); the
erasing transaction sends `pg_notify(CHANNEL, member_number)`, which PostgreSQL delivers only
once it commits, and each gateway's listener (`subscribe`, on the process's one connection:
`shared.listening`) drops the member's entries as it hears it. The erasing process drops its own
entries after the commit (`forget_member`), so nothing depends on the listener for the caller's
next request.
"""

from __future__ import annotations

from datetime import datetime

from shared.cache import TimedCache
from shared.database import Database
from shared.listening import Listener, Subscription
from shared.sql import DbConnection, Sql

CHANNEL = "coalition_member_erased"

LOCK_MEMBER = Sql("SELECT id, erased_at FROM members WHERE member_number = :n FOR UPDATE")
ERASE = Sql(
    "UPDATE members SET email = NULL, password_hash = NULL, password_changed_at = NULL,"
    " require_code_to_spend = false, language = NULL, birth_date = NULL, erased_at = :at WHERE id = :id"
)
UNLINK_ALL = Sql("DELETE FROM enrollments WHERE member_id = :id")
NOTIFY = Sql("SELECT pg_notify(:channel, :number)")


async def lock_member(conn: DbConnection, member_number: str) -> tuple[int, datetime | None] | None:
    """The member's id and erased_at, the row locked against a concurrent erasure or login
    change; None for an unknown number."""
    row = await LOCK_MEMBER.fetchrow(conn, n=member_number)
    return (row["id"], row["erased_at"]) if row else None


DELETE_CODES = Sql(
    "WITH s AS (DELETE FROM spend_codes WHERE member_id = :id)"
    " DELETE FROM activation_codes WHERE member_id = :id"
)


async def revoke_member_codes(conn: DbConnection, member_id: int) -> None:
    """In the erasing transaction: the member's spend and activation codes go. Their tokens are
    identity's: the ledger's erasure revokes them once this transaction has committed."""
    await DELETE_CODES.execute(conn, id=member_id)


async def erase_personal_data(conn: DbConnection, member_id: int, member_number: str, at: datetime) -> None:
    """In the caller's transaction: the personal data goes, the number stays; every process is
    told to forget the member once the transaction commits."""
    await ERASE.execute(conn, at=at, id=member_id)
    await UNLINK_ALL.execute(conn, id=member_id)
    await revoke_member_codes(conn, member_id)
    await NOTIFY.execute(conn, channel=CHANNEL, number=member_number)


def forget_member(cache: TimedCache, member_number: str) -> int:
    """Drops every cached answer about the member (keys `("member", number, partner_id)`)."""

    def about(key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 3 and key[:2] == ("member", member_number)

    return cache.forget_where(about)


async def subscribe(listener: Listener, db: Database) -> Subscription:
    """Drop an erased member from `db`'s member cache the moment the erasure commits, from the
    process's listener. Nothing to catch up on reconnecting: the link subscription
    (`propagation.subscribe`) forgets every ("member", …) entry then, this member's among them;
    without a listener MEMBER_CACHE_SECONDS bounds how long an entry can outlive an erasure (and
    erasure removes the links, so a stale entry at most lets an earn reach the ledger, which then
    finds no member: the ledger re-reads the member inside every spend)."""

    def erased(member_number: str) -> None:  # nobody waits on an erasure notice: no id to give back
        forget_member(db.cache, member_number)

    return await listener.subscribe(CHANNEL, erased)
