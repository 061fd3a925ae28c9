"""Member passwords: argon2id hashes, the password rules, and checking a login.

A member logs in with their email or their member number and a password they set after
activation (a code mailed to the email the partner gave). Passwords are hashed with argon2id
(argon2-cffi's RFC 9106 low-memory profile); a hash made under older parameters is re-hashed at
the next successful login. An unknown username costs the same hash as a wrong password, so the
time of the answer does not tell which usernames exist.
"""

from __future__ import annotations

import asyncio
import contextlib
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity import service as identity
from services.members.models import Member
from shared import clock
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.ids import is_valid_member_number
from shared.parsing import email_address

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256  # argon2 hashes any length; a bound keeps a login request cheap


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash("not anybody's password")


def check_password_rules(password: str, member_number: str, field: str = "password") -> None:
    """The rules a new password must meet, as a DomainError naming the field."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError.single(
            UserErrorCode.PASSWORD_TOO_WEAK,
            f"the password must be at least {MIN_PASSWORD_LENGTH} characters",
            field,
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise DomainError.single(
            UserErrorCode.TOO_LONG, f"the password must be at most {MAX_PASSWORD_LENGTH} characters", field
        )
    if member_number in password.replace(" ", ""):
        raise DomainError.single(
            UserErrorCode.PASSWORD_TOO_WEAK, "the password must not contain your member number", field
        )


async def hash_password(password: str) -> str:
    """argon2id takes tens of milliseconds of CPU on purpose: off the event loop."""
    return await asyncio.to_thread(_hasher().hash, password)


async def _verify(stored: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher().verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


async def set_password(db: Database, member_id: int, password: str) -> None:
    """Sets a member's password after the rules; erased members have none to set. Every session
    of the member ends with it, on every gateway before this returns (see `set_password_in`)."""
    async with db.sessions() as session, session.begin():
        revoked = await set_password_in(session, member_id, password)
    await identity.applied_everywhere(db, revoked)


async def set_password_in(session: AsyncSession, member_id: int, password: str) -> str:
    """`set_password` in the caller's transaction (activation consumes its code in the same one,
    so a refused password leaves the code usable and a stored one leaves no code behind).

    A new password, set by the member (activation, reset) or by support, ends every session of
    the member: a reset is what a member does when someone else may know the old password, and
    that someone may hold tokens too. In this same transaction identity revokes every refresh
    family and marks every access token issued until now as refused (`revoke_member_tokens`).
    Returns the notice to pass to `identity.applied_everywhere` once the caller has committed."""
    number = await session.scalar(
        select(Member.member_number).where(Member.id == member_id, Member.erased_at.is_(None))
    )
    if number is None:
        raise DomainError.single(UserErrorCode.MEMBER_NOT_FOUND, "no member has this number", "memberNumber")
    check_password_rules(password, number)
    hashed = await hash_password(password)
    await session.execute(
        update(Member)
        .where(Member.id == member_id)
        .values(password_hash=hashed, password_changed_at=clock.now())
    )
    return await identity.revoke_member_tokens(session, member_id)


def _username_clause(username: str) -> ColumnElement[bool]:
    username = username.strip()
    if is_valid_member_number(username):
        return Member.member_number == username
    with contextlib.suppress(ValueError):
        username = email_address(username)
    # Mail systems treat the local part case-insensitively in practice; people type it so.
    return func.lower(Member.email) == username.lower()


async def authenticate(db: Database, username: str, password: str) -> int | None:
    """The member id for a correct username (email or member number) and password, else None.
    Members without a password yet (not activated) and erased members cannot log in."""
    if not username.strip() or not password or len(password) > MAX_PASSWORD_LENGTH:
        return None
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(Member.id, Member.password_hash).where(
                    _username_clause(username),
                    Member.erased_at.is_(None),
                    Member.password_hash.is_not(None),
                )
            )
        ).all()
    # An email given at two partners' enrolments may name two members: only one with a password
    # can log in by email; with two passwords set, the member number is needed.
    if len(rows) != 1:
        await _verify(_dummy_hash(), password)
        return None
    member_id, stored = rows[0]
    if not await _verify(stored, password):
        return None
    if _hasher().check_needs_rehash(stored):
        rehashed = await hash_password(password)
        async with db.sessions() as session, session.begin():
            await session.execute(update(Member).where(Member.id == member_id).values(password_hash=rehashed))
    return int(member_id)
