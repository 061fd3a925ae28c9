"""Spending consent: one-time codes the member shows at the till.

A member who sets `require_code_to_spend` has every spend of their points by a partner
(redeemPoints, authorizeRedemption, redeemReward) refused without a valid code. A code is 8 digits,
lives CODE_LIFETIME, is bound to its member, is consumed by one successful spend, and voids the
member's previous live code. Only its
hash is stored.

The ledger checks a code inside the spend's transaction, after the member's wallet lock: every
spend of a member's points takes that lock first, so two spends presenting the same code are
serialized and only the first finds it unused. Checking (`check`) writes nothing, so a spend refused
later (not enough points) leaves the code unused; `consume` marks it used once the spend has
written, in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared import clock, sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, InputError, UserError
from shared.sql import DbConnection, Sql

CODE_LIFETIME = timedelta(minutes=2)
CODE_DIGITS = 8
FIELD = "memberCode"

# One live code per member: a new one voids those before it (marked used), so a guesser never
# has more than one code to hit. An erased member gets none.
VOID_LIVE = Sql(
    "UPDATE spend_codes SET used_at = :now WHERE member_id = :m AND used_at IS NULL AND expires_at > :now"
)
INSERT_CODE = Sql(
    "INSERT INTO spend_codes (member_id, code_hash, expires_at)"
    " SELECT id, :h, :expires FROM members WHERE id = :m AND erased_at IS NULL RETURNING id"
)
# The member's consent setting and the live code matching the one presented, in one statement.
CONSENT = Sql(
    "SELECT m.require_code_to_spend AS required, c.id AS code_id FROM members m"
    " LEFT JOIN spend_codes c ON c.member_id = m.id AND c.code_hash = :h AND c.used_at IS NULL"
    " AND c.expires_at > :now WHERE m.id = :m"
)
CONSUME = Sql("UPDATE spend_codes SET used_at = :now WHERE id = :id AND used_at IS NULL RETURNING 1")


@dataclass(frozen=True)
class SpendCode:
    code: str
    expires_at: datetime


def code_hash(member_id: int, code: str) -> str:
    return hashlib.sha256(f"{member_id}:{code}".encode()).hexdigest()


async def create_spend_code(db: Database, principal: Principal) -> SpendCode:
    """A new code for the calling member; it voids the member's earlier live code (the app shows
    one code at a time)."""
    member_id = principal.require_member()
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    now = clock.now()
    expires_at = now + CODE_LIFETIME
    async with sql.connection(db) as conn, conn.transaction():
        await VOID_LIVE.execute(conn, m=member_id, now=now)
        created = await INSERT_CODE.fetchval(
            conn, m=member_id, h=code_hash(member_id, code), expires=expires_at
        )
    if created is None:
        raise DomainError.single(UserErrorCode.MEMBER_NOT_FOUND, "this member was erased", None)
    return SpendCode(code, expires_at)


def _refused(code: UserErrorCode, message: str) -> InputError:
    # Not stored against the idempotency key: the till asks the member for a code and retries
    # with the same key.
    return InputError([UserError(code=code, field=FIELD, message=message)])


async def check(
    conn: DbConnection, member_id: int, code: str | None, *, by_member: bool = False
) -> int | None:
    """The id of the code to consume once the spend has written, or None when none was given and
    none is needed: the member does not require one, or it is the member spending from their own
    app (`by_member`: acting themselves is their consent). Refuses (writing nothing) a missing
    code the member requires, and any code given that is wrong, used or expired. Call under the
    member's wallet lock."""
    presented = code.strip() if code is not None else None
    row = await CONSENT.fetchrow(
        conn, m=member_id, h=code_hash(member_id, presented) if presented else "", now=clock.now()
    )
    required = bool(row and row["required"]) and not by_member
    if not presented:
        if required:
            raise _refused(
                UserErrorCode.MEMBER_CODE_REQUIRED, "this member requires a code from their app to spend"
            )
        return None
    if row is None or row["code_id"] is None:
        raise _refused(UserErrorCode.MEMBER_CODE_INVALID, "this code is wrong, used or expired")
    return int(row["code_id"])


async def consume(conn: DbConnection, code_id: int | None) -> None:
    """Marks the code used, in the spend's transaction (after its writes)."""
    if code_id is None:
        return
    consumed = await CONSUME.fetchval(conn, id=code_id, now=clock.now())
    # Under the wallet lock nobody else can have consumed it since `check`.
    assert consumed, "a spend code checked under the wallet lock was consumed by another spend"
