"""Members and their links to partners; the tenancy rule partners live by.

A partner sees a member, and may spend their points, only once the member is linked to it: by
`enroll_member` with the partner's own customer ref, or by presenting the card at its till (an
earn that gives points). An unknown number and a member not linked to the caller get the same
answer, byte for byte (`MEMBER_NOT_FOUND`), and such answers are rate-limited per client
(`LOOKUP_MISSES`), so member numbers cannot be checked one by one at speed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.members import events
from services.members.mail_preferences import normalize_language
from services.members.models import Enrollment, Member
from shared import clock, sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator
from shared.ids import is_valid_member_number, new_member_number
from shared.parsing import email_address
from shared.rate_limit import SlidingWindow
from shared.settings import get_settings
from shared.sql import DbConnection, Sql

MAX_REF = 200


def member_not_found() -> DomainError:
    """The one answer for a number nobody has and for a member the caller is not linked to."""
    return DomainError.single(UserErrorCode.MEMBER_NOT_FOUND, "no member has this number", "memberNumber")


def _lookup_misses() -> SlidingWindow:
    settings = get_settings()
    return SlidingWindow(
        "member-lookup-miss",
        settings.member_miss_limit,
        timedelta(seconds=settings.member_miss_window_seconds),
    )


async def refuse_if_rate_limited(db: Database, principal: Principal) -> None:
    """Every operation that names a member by number asks this first: a partner client that got
    too many MEMBER_NOT_FOUND answers lately is refused outright (for known and unknown numbers
    alike, or the refusal itself would tell them apart). Admins see every member: no limit."""
    if principal.partner_id is not None:
        await _lookup_misses().refuse_if_blocked(
            db, principal.client_id, "too many unknown member numbers from this client"
        )


async def note_lookup_miss(db: Database, principal: Principal) -> None:
    """Counts a MEMBER_NOT_FOUND answer against the calling client."""
    if principal.partner_id is not None:
        await _lookup_misses().hit(db, principal.client_id)


async def note_lookup_misses(db: Database, principal: Principal, count: int) -> None:
    """Counts a batch's MEMBER_NOT_FOUND answers (recordPurchases), at most a full window's worth."""
    if principal.partner_id is not None:
        for _ in range(min(count, get_settings().member_miss_limit)):
            await _lookup_misses().hit(db, principal.client_id)


@dataclass(frozen=True)
class MemberView:
    id: int
    member_number: str
    # The caller this service found the member for, having checked they may see them (linked, or
    # an admin): proof the ledger accepts instead of asking the database again whether the member
    # is linked (`services.ledger.queries`), so a read of a member's points costs one statement.
    # Only this service's lookups set it; None proves nothing.
    visible_to: Principal | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class MemberAtPartner:
    member_id: int
    enrolled: bool


class EnrolOutcome(StrEnum):
    CREATED = "CREATED"  # a new member, with a new number
    LINKED = "LINKED"  # an existing member (memberNumber) linked, or named by the partner's ref
    REPEATED = "REPEATED"  # the same enrolment again (a retry): nothing changed


@dataclass(frozen=True)
class Enrolled:
    """What an enrolment did, for an `EnrolHook` (the member's email as the partner gave it)."""

    member_id: int
    member_number: str
    email: str | None
    outcome: EnrolOutcome


# Run inside the enrolment's transaction, after its rows and events are written: a service right
# of members (engagement's referrals) records what it owns with the enrolment, atomically, or
# raises DomainError to refuse it (nothing is then enrolled). Members cannot import those
# services; the composing layer passes the hook in.
EnrolHook = Callable[[AsyncSession, Enrolled], Awaitable[None]]


OLDEST = date(1900, 1, 1)


def check_birth_date(value: date, field: str = "birthDate") -> None:
    """A birth date a person can have: from 1900 until today (UTC)."""
    if not OLDEST <= value <= clock.now().date():
        raise DomainError.single(
            UserErrorCode.INVALID, f"{field} must be between {OLDEST.isoformat()} and today", field
        )


def check_member_number(v: Validator, member_number: str, field: str = "memberNumber") -> None:
    if v.check(bool(member_number), field, UserErrorCode.REQUIRED, f"{field} must not be empty"):
        v.check(
            is_valid_member_number(member_number),
            field,
            UserErrorCode.INVALID_MEMBER_NUMBER,
            f"{field} must be 12 digits with a valid check digit",
        )


async def enroll_member(
    db: Database,
    principal: Principal,
    *,
    partner_customer_ref: str,
    email: str | None = None,
    member_number: str | None = None,
    language: str | None = None,
    on_enrolled: EnrolHook | None = None,
    birth_date: date | None = None,
) -> MemberView:
    """`language` (a BCP 47 tag) is the customer's language for member mail, when the partner
    knows it: set on a new member, and on a linked one who has none yet (never overriding the
    member's own choice); `birth_date` likewise (for birthday bonuses). `on_enrolled` runs in the
    enrolment's transaction (see `EnrolHook`)."""
    partner_id = principal.require_partner("members:write")
    v = Validator()
    v.text(partner_customer_ref, "partnerCustomerRef", max_length=MAX_REF)
    if language is not None:
        try:
            language = normalize_language(language)
        except ValueError as exc:
            v.add("language", UserErrorCode.INVALID, str(exc))
    if email is not None:
        try:
            email = email_address(email)
        except ValueError as exc:
            v.add("email", UserErrorCode.INVALID_EMAIL, f"email is not an address: {exc}")
    if member_number is not None:
        check_member_number(v, member_number)
    v.raise_if_any()
    if birth_date is not None:
        check_birth_date(birth_date)

    if member_number is not None:
        await refuse_if_rate_limited(db, principal)
    try:
        for _attempt in range(3):
            try:
                async with db.sessions() as session, session.begin():
                    view, outcome = await _enroll(
                        session, partner_id, partner_customer_ref, email, member_number, language, birth_date
                    )
                    if on_enrolled is not None:
                        await on_enrolled(session, Enrolled(view.id, view.member_number, email, outcome))
                # Enrolled or linked just now: the partner sees the member.
                return replace(view, visible_to=principal)
            except IntegrityError:
                continue  # a concurrent enrolment won the race; the next pass finds its row
    except DomainError as exc:
        if exc.errors[0].code == UserErrorCode.MEMBER_NOT_FOUND:
            await note_lookup_miss(db, principal)
        raise
    raise DomainError.single(
        UserErrorCode.CONFLICT, "enrolment raced with another; retry", "partnerCustomerRef"
    )


async def _enroll(
    session: AsyncSession,
    partner_id: int,
    ref: str,
    email: str | None,
    member_number: str | None,
    language: str | None = None,
    birth_date: date | None = None,
) -> tuple[MemberView, EnrolOutcome]:
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
                UserErrorCode.REF_ALREADY_ENROLLED,
                "this partnerCustomerRef is enrolled with another member number",
                "partnerCustomerRef",
            )
        return MemberView(existing.id, existing.member_number), EnrolOutcome.REPEATED  # no event

    if member_number is None:
        member = Member(
            member_number=new_member_number(), email=email, language=language, birth_date=birth_date
        )
        session.add(member)
        await session.flush()
        session.add(Enrollment(member_id=member.id, partner_id=partner_id, partner_customer_ref=ref))
        await session.flush()
        await events.record_enrolment(
            session, member.id, member.member_number, partner_id, ref, new_link=True
        )
        return MemberView(member.id, member.member_number), EnrolOutcome.CREATED

    # An erased member's number stays as the ledger's key but names nobody a partner may enrol.
    member_id = await session.scalar(
        select(Member.id).where(Member.member_number == member_number, Member.erased_at.is_(None))
    )
    if member_id is None:
        raise member_not_found()
    current_ref = (
        await session.execute(
            select(Enrollment.partner_customer_ref).where(
                Enrollment.partner_id == partner_id, Enrollment.member_id == member_id
            )
        )
    ).first()
    if language is not None:
        await session.execute(
            update(Member).where(Member.id == member_id, Member.language.is_(None)).values(language=language)
        )
    if birth_date is not None:
        await session.execute(
            update(Member)
            .where(Member.id == member_id, Member.birth_date.is_(None))
            .values(birth_date=birth_date)
        )
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
            UserErrorCode.ALREADY_ENROLLED,
            "this member is enrolled with you under another partnerCustomerRef",
            "memberNumber",
        )
    await session.flush()
    await events.record_enrolment(
        session, member_id, member_number, partner_id, ref, new_link=current_ref is None
    )
    return MemberView(member_id, member_number), EnrolOutcome.LINKED


MEMBER_AT_PARTNER = Sql(
    "SELECT m.id, e.id IS NOT NULL AS enrolled FROM members m"
    " LEFT JOIN enrollments e ON e.member_id = m.id AND e.partner_id = :p"
    " WHERE m.member_number = :n AND m.erased_at IS NULL"
)
MEMBERS_AT_PARTNER = Sql(
    "SELECT m.member_number, m.id, e.id IS NOT NULL AS enrolled"
    " FROM unnest(CAST(:numbers AS text[])) AS n(number)"
    " JOIN members m ON m.member_number = n.number AND m.erased_at IS NULL"
    " LEFT JOIN enrollments e ON e.member_id = m.id AND e.partner_id = :p"
)
LINK_MANY = Sql(
    "INSERT INTO enrollments (member_id, partner_id)"
    " SELECT DISTINCT m, CAST(:p AS bigint) FROM unnest(CAST(:members AS bigint[])) AS m ORDER BY m"
    " ON CONFLICT (partner_id, member_id) DO NOTHING RETURNING member_id"
)
IS_LINKED = Sql("SELECT 1 FROM enrollments WHERE member_id = :m AND partner_id = :p")
MEMBER_ID = Sql("SELECT id FROM members WHERE member_number = :n")
MEMBER_NUMBER = Sql("SELECT member_number FROM members WHERE id = :id")
MEMBER_NUMBERS = Sql("SELECT id, member_number FROM members WHERE id = ANY(CAST(:ids AS bigint[]))")


async def member_numbers(conn: DbConnection, member_ids: list[int]) -> dict[int, str]:
    """Member numbers by id, for other services that list members they already may see."""
    return {r["id"]: r["member_number"] for r in await MEMBER_NUMBERS.fetch(conn, ids=member_ids)}


async def member_at_partner(
    conn: DbConnection, member_number: str, partner_id: int
) -> MemberAtPartner | None:
    """The member behind a number and whether the partner knows them yet: one statement, on the
    ledger's connection (it runs inside every earn and redemption)."""
    row = await MEMBER_AT_PARTNER.fetchrow(conn, n=member_number, p=partner_id)
    return MemberAtPartner(row["id"], row["enrolled"]) if row else None


def _member_key(member_number: str, partner_id: int) -> tuple[str, str, int]:
    """The member cache's key: unlinking and erasure forget it (`db.cache.forget`)."""
    return ("member", member_number, partner_id)


async def cached_member_at_partner(
    db: Database, conn: DbConnection, member_number: str, partner_id: int
) -> MemberAtPartner | None:
    """As `member_at_partner`, remembered per process once the member is linked there: a number
    never changes hands; erasure and unlinking clear the member's entries in every process at once
    (NOTIFY from the committing transaction, a listener per gateway: `services.members.erasure`,
    `services.members.propagation`); MEMBER_CACHE_SECONDS bounds it when no listener runs)."""
    key = _member_key(member_number, partner_id)
    hit: MemberAtPartner | None = db.cache.get(key)
    if hit is not None:
        return hit
    found = await member_at_partner(conn, member_number, partner_id)
    if found is not None and found.enrolled:
        db.cache.put(key, get_settings().member_cache_seconds, found)
    return found


async def link_member(conn: DbConnection, member_id: int, member_number: str, partner_id: int) -> bool:
    """Presenting the coalition card at a partner's till (an earn that gives points) is consent
    to be known there. Writes member.linked (CARD_PRESENTED) with the link, in one statement;
    False when the member was linked already."""
    return await events.link_at_till(conn, member_id, member_number, partner_id)


async def members_at_partner(
    conn: DbConnection, member_numbers: list[str], partner_id: int
) -> dict[str, MemberAtPartner]:
    """`member_at_partner` for a whole batch in one statement (bulk earning): numbers nobody
    has, or an erased member's, are absent from the answer."""
    rows = await MEMBERS_AT_PARTNER.fetch(conn, numbers=member_numbers, p=partner_id)
    return {r["member_number"]: MemberAtPartner(r["id"], r["enrolled"]) for r in rows}


async def link_members(conn: DbConnection, numbers: dict[int, str], partner_id: int) -> None:
    """`link_member` for a batch of earns (member id -> number), in one statement (in member-id
    order, like every batch of row locks), and one for the new links' member.linked events. Call
    it inside the batch's transaction."""
    if numbers:
        rows = await LINK_MANY.fetch(conn, members=sorted(numbers), p=partner_id)
        await events.record_linked_at_till(
            conn, {r["member_id"]: numbers[r["member_id"]] for r in rows}, partner_id
        )


async def is_linked(conn: DbConnection, member_id: int, partner_id: int) -> bool:
    return bool(await IS_LINKED.fetchval(conn, m=member_id, p=partner_id))


async def find_member(db: Database, principal: Principal, member_number: str) -> MemberView | None:
    """A member as the caller may see them: partners only their linked members, admins all.
    None for an unknown number and for a member not linked to the caller alike (and counted
    against the caller's limit of such answers).

    A partner's lookup of a member linked to it is answered from the member cache once it has
    been seen (`cached_member_at_partner`), and the rate-limit check from its per-process copy,
    so the read that follows (a balance) is the request's only statement. The view carries
    `visible_to`, so the ledger does not ask again whether the member is linked."""
    if principal.partner_id is None:
        principal.require_admin("admin:partners")
    else:
        principal.require("members:read")
        await refuse_if_rate_limited(db, principal)
    if not is_valid_member_number(member_number):
        return None
    if principal.partner_id is None:
        async with sql.connection(db) as conn:
            member_id = await MEMBER_ID.fetchval(conn, n=member_number)
    else:
        found: MemberAtPartner | None = db.cache.get(_member_key(member_number, principal.partner_id))
        if found is None:
            async with sql.connection(db) as conn:
                found = await cached_member_at_partner(db, conn, member_number, principal.partner_id)
        member_id = found.member_id if found is not None and found.enrolled else None
    if member_id is None:
        await note_lookup_miss(db, principal)
        return None
    return MemberView(member_id, member_number, visible_to=principal)


async def find_member_by_id(db: Database, principal: Principal, member_id: int) -> MemberView | None:
    """As `find_member`, by internal id (Relay `node`); ids are not member numbers, so a miss
    here is not counted."""
    if principal.partner_id is None:
        principal.require_admin("admin:partners")
    else:
        principal.require("members:read")
    async with sql.connection(db) as conn:
        number = await MEMBER_NUMBER.fetchval(conn, id=member_id)
        if number is None:
            return None
        if principal.partner_id is not None and not await is_linked(conn, member_id, principal.partner_id):
            return None
    return MemberView(member_id, number, visible_to=principal)
