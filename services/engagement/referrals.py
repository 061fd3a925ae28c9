"""Referrals: a member's referral code, and the referral recorded when a partner enrols a new
member with it. The bonus the referrer earns later is services/engagement/referral_bonuses.py.

Rules, stated (docs/decisions.md, "Referrals"):
- a code is 8 Crockford base32 characters (no I, L, O, U: nothing to misread), drawn at random
  (32^8, about 10^12 codes) on the member's first read of it (`Me.referralCode`) and stable after;
  typed codes are read forgivingly: case, spaces and hyphens do not matter, I and L read as 1, O
  as 0;
- `enrollMember(referralCode)` runs the checks and records the referral in the enrolment's own
  transaction (members' `EnrolHook`): an unknown code (or an erased member's) is
  REFERRAL_CODE_INVALID and nobody is enrolled;
- self-referral (REFERRAL_SELF): the code is the member's own, or its owner has the new member's
  email (case-insensitive) — the same person under a second member number;
- chains (REFERRAL_CHAIN): nobody is referred by someone they referred, directly or through
  others: the referrer's referrers, transitively, may be neither the member nor have their email;
- a referral is recorded only for a member the enrolment creates, and only when no other member
  has their email: linking an existing member (memberNumber), re-enrolling a ref (a retry) or
  enrolling a known email at another partner checks the code but refers nobody. A member is
  referred at most once (a unique referred member).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.engagement.referral_models import Referral, ReferralCode
from services.members import contacts
from services.members import service as members
from services.members.service import EnrolHook, Enrolled, EnrolOutcome, MemberView
from shared import clock, sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.sql import Sql

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
CODE_LENGTH = 8
READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})

GET_CODE = Sql("SELECT code FROM referral_codes WHERE member_id = :m")
ADD_CODE = Sql("INSERT INTO referral_codes (member_id, code) VALUES (:m, :code) ON CONFLICT DO NOTHING")
ANCESTORS = text(
    "WITH RECURSIVE up(member_id) AS ("
    " SELECT referrer_member_id FROM referrals WHERE referred_member_id = :m"
    " UNION SELECT r.referrer_member_id FROM referrals r JOIN up ON r.referred_member_id = up.member_id)"
    " SELECT member_id FROM up"
)
# Two enrolments of one new email at once: the second waits, then sees the first's member.
LOCK_EMAIL = text("SELECT pg_advisory_xact_lock(hashtextextended('referral-email:' || :email, 0))")
SUMMARY = Sql(
    "SELECT (SELECT count(*) FROM referrals WHERE referrer_member_id = :m) AS referred,"
    " count(b.referral_id) AS rewarded, COALESCE(sum(b.points), 0) AS points"
    " FROM referral_bonuses b WHERE b.referrer_member_id = :m"
)


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(typed: str) -> str | None:
    """The code as stored, from what a customer typed; None when it cannot be one."""
    code = "".join(typed.split()).replace("-", "").upper().translate(READ_AS)
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


def invalid_code() -> DomainError:
    return DomainError.single(
        UserErrorCode.REFERRAL_CODE_INVALID, "no member has this referral code", "referralCode"
    )


async def referral_code(db: Database, principal: Principal) -> str:
    """The calling member's code, drawn on first read (a member token only). A drawn code that
    another member holds already is drawn again; two first reads at once keep one code."""
    member_id = principal.require_member()
    async with sql.connection(db) as conn:
        for _attempt in range(5):
            found = await GET_CODE.fetchval(conn, m=member_id)
            if found is not None:
                return str(found)
            await ADD_CODE.execute(conn, m=member_id, code=new_code())
    raise AssertionError(f"member {member_id}: no referral code could be drawn")


async def enroll_member(
    db: Database,
    principal: Principal,
    *,
    partner_customer_ref: str,
    email: str | None = None,
    member_number: str | None = None,
    language: str | None = None,
    referral_code: str | None = None,
    birth_date: date | None = None,
) -> MemberView:
    """The members service's enrolment, with a referral recorded in its transaction when a
    `referral_code` is given (rules in the module's docstring)."""
    hook: EnrolHook | None = None
    if referral_code is not None:
        code = normalize_code(referral_code)
        if code is None:
            principal.require_partner("members:write")  # who may ask comes before what is wrong
            raise invalid_code()
        hook = _referring(code, principal)
    return await members.enroll_member(
        db,
        principal,
        partner_customer_ref=partner_customer_ref,
        email=email,
        member_number=member_number,
        language=language,
        on_enrolled=hook,
        birth_date=birth_date,
    )


def _referring(code: str, principal: Principal) -> EnrolHook:
    async def hook(session: AsyncSession, enrolled: Enrolled) -> None:
        await _record_referral(session, code, enrolled, principal)

    return hook


async def _record_referral(
    session: AsyncSession, code: str, enrolled: Enrolled, principal: Principal
) -> None:
    if enrolled.outcome == EnrolOutcome.REPEATED:
        return  # a retry of an enrolment that already stood: it answers as the first one did
    referrer = await session.scalar(select(ReferralCode.member_id).where(ReferralCode.code == code))
    if referrer is None:
        raise invalid_code()
    ancestors = [r for (r,) in (await session.execute(ANCESTORS, {"m": referrer})).all()]
    emails = await contacts.emails_of(session, [referrer, enrolled.member_id, *ancestors])
    if referrer not in emails:  # erased: the code names nobody any more
        raise invalid_code()
    email = (enrolled.email or emails.get(enrolled.member_id) or "").lower() or None
    if referrer == enrolled.member_id or (email is not None and emails[referrer] == email):
        raise DomainError.single(
            UserErrorCode.REFERRAL_SELF, "a member cannot refer themselves", "referralCode"
        )
    if enrolled.member_id in ancestors or (
        email is not None and any(emails.get(a) == email for a in ancestors)
    ):
        raise DomainError.single(
            UserErrorCode.REFERRAL_CHAIN,
            "the code's owner was referred, directly or through others, by this customer",
            "referralCode",
        )
    if enrolled.outcome != EnrolOutcome.CREATED:
        return  # an existing member linked: no new member to reward anyone for
    if email is not None:
        await session.execute(LOCK_EMAIL, {"email": email})
        if await contacts.email_taken_by_another(session, email, enrolled.member_id):
            return  # the same person, already a member (enrolled at another partner)
    await session.execute(
        insert(Referral)
        .values(
            referrer_member_id=referrer,
            referred_member_id=enrolled.member_id,
            partner_id=principal.require_partner("members:write"),
            created_at=clock.now(),
        )
        .on_conflict_do_nothing(index_elements=[Referral.referred_member_id])
    )


@dataclass(frozen=True)
class ReferralSummary:
    referred: int  # members enrolled with the member's code
    rewarded: int  # of them, those whose bonus was paid
    points: int  # bonus points earned in all


async def referral_summary(db: Database, principal: Principal) -> ReferralSummary:
    """The calling member's referrals (a member token only)."""
    member_id = principal.require_member()
    async with sql.connection(db) as conn:
        row = await SUMMARY.fetchrow(conn, m=member_id)
    assert row is not None
    return ReferralSummary(int(row["referred"]), int(row["rewarded"]), int(row["points"]))
