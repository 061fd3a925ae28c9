"""Members and their enrolments at partners; the tenancy rule partners live by.

A partner sees a member only once the member is enrolled with it (or presented the card at its
till); an unknown number and a member enrolled elsewhere look exactly alike to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import accounts as ledger_accounts
from services.members.models import Enrollment, Member
from shared.access import Principal
from shared.database import Database
from shared.errors import DomainError, Validator
from shared.ids import is_valid_member_number, new_member_number
from shared.settings import get_settings
from shared.sql import DbConnection, Sql

MAX_REF = 200
MAX_EMAIL = 254
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class MemberView:
    id: int
    member_number: str


@dataclass(frozen=True)
class MemberAtPartner:
    member_id: int
    enrolled: bool


def check_member_number(v: Validator, member_number: str, field: str = "memberNumber") -> None:
    if v.check(bool(member_number), field, "REQUIRED", f"{field} must not be empty"):
        v.check(
            is_valid_member_number(member_number),
            field,
            "INVALID_MEMBER_NUMBER",
            f"{field} must be 12 digits with a valid check digit",
        )


async def enroll_member(
    session: AsyncSession,
    principal: Principal,
    *,
    partner_customer_ref: str,
    email: str | None = None,
    member_number: str | None = None,
) -> MemberView:
    partner_id = principal.require_partner("members:write")
    v = Validator()
    v.text(partner_customer_ref, "partnerCustomerRef", max_length=MAX_REF)
    if email is not None:
        v.check(
            len(email) <= MAX_EMAIL and bool(EMAIL_PATTERN.match(email)),
            "email",
            "INVALID_EMAIL",
            "email must be an address like name@example.com",
        )
    if member_number is not None:
        check_member_number(v, member_number)
    v.raise_if_any()

    for _attempt in range(3):
        try:
            async with session.begin_nested():
                return await _enroll(session, partner_id, partner_customer_ref, email, member_number)
        except IntegrityError:
            continue  # a concurrent enrolment won the race; the next pass finds its row
    raise DomainError.single("CONFLICT", "enrolment raced with another; retry", "partnerCustomerRef")


async def _enroll(
    session: AsyncSession,
    partner_id: int,
    ref: str,
    email: str | None,
    member_number: str | None,
) -> MemberView:
    existing = (
        await session.execute(
            select(Member.id, Member.member_number)
            .join(Enrollment, Enrollment.member_id == Member.id)
            .where(Enrollment.partner_id == partner_id, Enrollment.partner_customer_ref == ref)
        )
    ).first()
    if existing is not None:
        if member_number is not None and existing.member_number != member_number:
            raise DomainError.single(
                "REF_ALREADY_ENROLLED",
                "this partnerCustomerRef is enrolled with another member number",
                "partnerCustomerRef",
            )
        return MemberView(existing.id, existing.member_number)

    if member_number is None:
        member = Member(member_number=new_member_number(), email=email)
        session.add(member)
        await session.flush()
        await ledger_accounts.open_wallet(session, member.id)
        session.add(Enrollment(member_id=member.id, partner_id=partner_id, partner_customer_ref=ref))
        await session.flush()
        return MemberView(member.id, member.member_number)

    member_id = await session.scalar(select(Member.id).where(Member.member_number == member_number))
    if member_id is None:
        raise DomainError.single("MEMBER_NOT_FOUND", "no member has this number", "memberNumber")
    current_ref = (
        await session.execute(
            select(Enrollment.partner_customer_ref).where(
                Enrollment.partner_id == partner_id, Enrollment.member_id == member_id
            )
        )
    ).first()
    if current_ref is None:
        session.add(Enrollment(member_id=member_id, partner_id=partner_id, partner_customer_ref=ref))
    elif current_ref[0] is None:  # linked at the till earlier; now the partner names its customer
        await session.execute(
            update(Enrollment)
            .where(Enrollment.partner_id == partner_id, Enrollment.member_id == member_id)
            .values(partner_customer_ref=ref)
        )
    else:
        raise DomainError.single(
            "ALREADY_ENROLLED",
            "this member is enrolled with you under another partnerCustomerRef",
            "memberNumber",
        )
    await session.flush()
    return MemberView(member_id, member_number)


MEMBER_AT_PARTNER = Sql(
    "SELECT m.id, e.id IS NOT NULL AS enrolled FROM members m"
    " LEFT JOIN enrollments e ON e.member_id = m.id AND e.partner_id = :p"
    " WHERE m.member_number = :n"
)
LINK = Sql(
    "INSERT INTO enrollments (member_id, partner_id) VALUES (:m, :p)"
    " ON CONFLICT (partner_id, member_id) DO NOTHING"
)


async def member_at_partner(
    conn: DbConnection, member_number: str, partner_id: int
) -> MemberAtPartner | None:
    """The member behind a number and whether the partner knows them yet: one statement, on the
    ledger's connection (it runs inside every earn and redemption)."""
    row = await MEMBER_AT_PARTNER.fetchrow(conn, n=member_number, p=partner_id)
    return MemberAtPartner(row["id"], row["enrolled"]) if row else None


async def cached_member_at_partner(
    db: Database, conn: DbConnection, member_number: str, partner_id: int
) -> MemberAtPartner | None:
    """As `member_at_partner`, remembered per process once the member is enrolled there: a number
    never changes hands and an enrolment is never undone, so the answer cannot go stale (a
    future erasure of members must clear this cache; MEMBER_CACHE_SECONDS bounds it meanwhile)."""
    key = ("member", member_number, partner_id)
    hit: MemberAtPartner | None = db.cache.get(key)
    if hit is not None:
        return hit
    found = await member_at_partner(conn, member_number, partner_id)
    if found is not None and found.enrolled:
        db.cache.put(key, get_settings().member_cache_seconds, found)
    return found


async def link_member(conn: DbConnection, member_id: int, partner_id: int) -> None:
    """Presenting the coalition card at a partner's till is consent to be known there."""
    await LINK.execute(conn, m=member_id, p=partner_id)


async def find_member(session: AsyncSession, principal: Principal, member_number: str) -> MemberView | None:
    """A member as the caller may see them: partners only their enrolled members, admins all."""
    if principal.partner_id is None:
        principal.require_admin("admin:partners")
    else:
        principal.require("members:read")
    if not is_valid_member_number(member_number):
        return None
    if principal.partner_id is None:
        member_id = await session.scalar(select(Member.id).where(Member.member_number == member_number))
        return MemberView(member_id, member_number) if member_id else None
    member_id = await session.scalar(
        select(Member.id)
        .join(Enrollment, Enrollment.member_id == Member.id)
        .where(Member.member_number == member_number, Enrollment.partner_id == principal.partner_id)
    )
    return MemberView(member_id, member_number) if member_id else None


async def is_enrolled(session: AsyncSession, member_id: int, partner_id: int) -> bool:
    return bool(
        await session.scalar(
            select(Enrollment.id).where(
                Enrollment.member_id == member_id, Enrollment.partner_id == partner_id
            )
        )
    )


async def find_member_by_id(session: AsyncSession, principal: Principal, member_id: int) -> MemberView | None:
    """As `find_member`, by internal id (Relay `node`)."""
    number = await session.scalar(select(Member.member_number).where(Member.id == member_id))
    return await find_member(session, principal, number) if number else None
