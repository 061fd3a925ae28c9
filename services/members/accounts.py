"""Member accounts: activation and password reset by a mailed code, and what support looks up.

A member enrolled by a partner has an email but no password. They ask for a code with their
member number and that email (`request_code`); when both match a member who is not erased, a
6-digit code valid 15 minutes is mailed, and they set a password with it (`confirm`). Forgetting
the password later is the same two steps. The answer to the request is the same whether or not
the pair matched (no oracle): the lookup and the write are one statement either way and the mail
is sent after the answer (the HTTP layer's background task), so neither body nor time tells.

Only a hash of the code is stored (SHA-256 of number and code): a database reader cannot type a
pending code from it at a glance; six digits are no defence against an offline search, which is
why codes live 15 minutes, a new request replaces the old code, and five wrong tries void it.
Requests and tries are rate-limited per member number and per client address, in PostgreSQL
(`shared.rate_limit`), so every gateway process counts the same attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from sqlalchemy import delete, select, text

from services.identity import service as identity
from services.members import credentials
from services.members.models import ActivationCode, Enrollment, Member
from services.members.service import check_member_number
from shared import audit_log, clock
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator
from shared.mail import Mail
from shared.parsing import email_address
from shared.rate_limit import SlidingWindow

CODE_TTL = timedelta(minutes=15)
MAX_WRONG_CODES = 5
# Generous for a person (a mail that is slow to arrive, a typo), tight for a script.
REQUESTS_PER_MEMBER = SlidingWindow("account-request-member", 5, timedelta(hours=1))
REQUESTS_PER_ADDRESS = SlidingWindow("account-request-address", 20, timedelta(hours=1))
CONFIRMS_PER_MEMBER = SlidingWindow("account-confirm-member", 10, timedelta(minutes=15))
CONFIRMS_PER_ADDRESS = SlidingWindow("account-confirm-address", 30, timedelta(minutes=15))


@dataclass(frozen=True)
class CodeMail:
    """A code to mail: the HTTP layer sends it after answering, so the answer's time is the same."""

    to: str
    member_number: str
    code: str
    reset: bool  # the member had a password already: "reset", not "activate"

    def mail(self) -> Mail:
        verb = "reset your password" if self.reset else "activate your account"
        minutes = int(CODE_TTL.total_seconds() // 60)
        text_body = (
            f"Your code to {verb} for member number {self.member_number} is:\n\n"
            f"    {self.code}\n\n"
            f"It is valid for {minutes} minutes and works once. If you did not ask for it, ignore"
            " this mail: nothing changes without the code.\n"
        )
        html_body = (
            f"<p>Your code to {escape(verb)} for member number {escape(self.member_number)} is:</p>"
            f'<p style="font-size:1.6em;letter-spacing:0.2em"><strong>{escape(self.code)}</strong></p>'
            f"<p>It is valid for {minutes} minutes and works once. If you did not ask for it,"
            " ignore this mail: nothing changes without the code.</p>"
        )
        return Mail(to=self.to, subject=f"Your Coalition code: {self.code}", text=text_body, html=html_body)


def _code_hash(member_number: str, code: str) -> str:
    return hashlib.sha256(f"{member_number}:{code}".encode()).hexdigest()


# One statement whether or not the pair matches: the member's lookup and the replacement of any
# older code. An erased member has no email left, so cannot match; the check says so anyway.
UPSERT_CODE = text(
    "WITH m AS (SELECT id, email, password_hash IS NOT NULL AS has_password FROM members"
    " WHERE member_number = :number AND lower(email) = lower(:email) AND erased_at IS NULL),"
    " up AS (INSERT INTO activation_codes (member_id, code_hash, expires_at, failed_attempts, created_at)"
    " SELECT id, :hash, :expires, 0, :now FROM m"
    " ON CONFLICT (member_id) DO UPDATE SET code_hash = excluded.code_hash,"
    " expires_at = excluded.expires_at, failed_attempts = 0, created_at = excluded.created_at"
    " RETURNING member_id)"
    " SELECT m.email, m.has_password FROM m JOIN up ON up.member_id = m.id"
)


async def _limit(db: Database, windows: list[tuple[SlidingWindow, str]], message: str) -> None:
    """Refuses (RateLimited) when any key is blocked, else counts this attempt against each."""
    for window, key in windows:
        await window.refuse_if_blocked(db, key, message)
    for window, key in windows:
        await window.hit(db, key)


async def request_code(db: Database, member_number: str, email: str, client_address: str) -> CodeMail | None:
    """Stores a new code when number and email match a member; the mail to send, else None.
    Malformed input (not a member number, not an address) is a DomainError naming the field:
    the format of a number is public, so refusing it tells nothing about who exists."""
    member_number, email = member_number.strip(), email.strip()
    v = Validator()
    check_member_number(v, member_number)
    if v.check(bool(email), "email", UserErrorCode.REQUIRED, "email must not be empty"):
        try:
            email = email_address(email)
        except ValueError as exc:
            v.add("email", UserErrorCode.INVALID_EMAIL, f"email is not an address: {exc}")
    v.raise_if_any()
    await _limit(
        db,
        [(REQUESTS_PER_MEMBER, member_number), (REQUESTS_PER_ADDRESS, client_address)],
        "too many code requests",
    )
    code = f"{secrets.randbelow(10**6):06d}"
    now = clock.now()
    async with db.sessions() as session, session.begin():
        row = (
            await session.execute(
                UPSERT_CODE,
                {
                    "number": member_number,
                    "email": email,
                    "hash": _code_hash(member_number, code),
                    "expires": now + CODE_TTL,
                    "now": now,
                },
            )
        ).first()
    if row is None:
        return None
    return CodeMail(to=row.email, member_number=member_number, code=code, reset=bool(row.has_password))


def _invalid(message: str) -> DomainError:
    return DomainError.single(UserErrorCode.ACTIVATION_CODE_INVALID, message, "code")


async def confirm(db: Database, member_number: str, code: str, password: str, client_address: str) -> int:
    """Sets the password when `code` is the member's pending code; returns the member id.
    A wrong code counts against the code (the fifth voids it); a weak password leaves it usable.

    A new password ends every session of the member (`credentials.set_password_in`, in the same
    transaction), and the answer waits until every gateway process has applied that."""
    member_number, code = member_number.strip(), code.strip()
    v = Validator()
    check_member_number(v, member_number)
    if v.check(bool(code), "code", UserErrorCode.REQUIRED, "code must not be empty"):
        v.check(
            len(code) == 6 and code.isascii() and code.isdigit(),
            "code",
            UserErrorCode.ACTIVATION_CODE_INVALID,
            "the code is the 6 digits of the mail",
        )
    v.check(bool(password), "password", UserErrorCode.REQUIRED, "password must not be empty")
    v.raise_if_any()
    await _limit(
        db,
        [(CONFIRMS_PER_MEMBER, member_number), (CONFIRMS_PER_ADDRESS, client_address)],
        "too many tries",
    )
    refusal: DomainError | None = None
    revoked: str | None = None
    async with db.sessions() as session, session.begin():
        pending = (
            await session.execute(
                select(ActivationCode)
                .join(Member, Member.id == ActivationCode.member_id)
                .where(Member.member_number == member_number, Member.erased_at.is_(None))
                .with_for_update(of=ActivationCode)
            )
        ).scalar_one_or_none()
        if pending is None:
            raise _invalid("no code is pending for this member number: ask for a new one")
        member_id = pending.member_id
        if not hmac.compare_digest(pending.code_hash, _code_hash(member_number, code)):
            failed = pending.failed_attempts + 1
            if failed >= MAX_WRONG_CODES:
                await session.execute(delete(ActivationCode).where(ActivationCode.member_id == member_id))
                refusal = _invalid(f"wrong code {MAX_WRONG_CODES} times: the code is void; ask for a new one")
            else:
                pending.failed_attempts = failed
                left = MAX_WRONG_CODES - failed
                refusal = _invalid(f"the code is wrong ({left} {'try' if left == 1 else 'tries'} left)")
        elif pending.expires_at <= clock.now():
            raise DomainError.single(
                UserErrorCode.ACTIVATION_CODE_EXPIRED,
                f"the code is older than {int(CODE_TTL.total_seconds() // 60)} minutes: ask for a new one",
                "code",
            )
        else:
            # Raises PASSWORD_TOO_WEAK before anything is written: the code stays usable.
            revoked = await credentials.set_password_in(session, member_id, password)
            await session.execute(delete(ActivationCode).where(ActivationCode.member_id == member_id))
    if refusal is not None:  # raised after the commit, so the wrong try counts
        raise refusal
    assert revoked is not None
    await identity.applied_everywhere(db, revoked)
    return member_id


# Support (the `coalition members` commands): what the members service knows of one member.


@dataclass(frozen=True)
class Link:
    partner_id: int
    partner_customer_ref: str | None
    linked_at: datetime

    @property
    def how(self) -> str:
        return "ENROLLED" if self.partner_customer_ref is not None else "CARD_PRESENTED"


@dataclass(frozen=True)
class MemberProfile:
    id: int
    member_number: str
    email: str | None
    created_at: datetime
    activated: bool
    password_changed_at: datetime | None
    require_code_to_spend: bool
    erased_at: datetime | None
    code_pending_until: datetime | None
    links: list[Link]


def _member_not_found() -> DomainError:
    return DomainError.single(UserErrorCode.MEMBER_NOT_FOUND, "no member has this number", "memberNumber")


def _checked_number(member_number: str) -> str:
    member_number = member_number.strip()
    v = Validator()
    check_member_number(v, member_number)
    v.raise_if_any()
    return member_number


async def member_profile(db: Database, principal: Principal, member_number: str) -> MemberProfile:
    principal.require_admin("admin:partners")
    member_number = _checked_number(member_number)
    async with db.sessions() as session:
        member = await session.scalar(select(Member).where(Member.member_number == member_number))
        if member is None:
            raise _member_not_found()
        links = (
            await session.execute(
                select(Enrollment.partner_id, Enrollment.partner_customer_ref, Enrollment.created_at)
                .where(Enrollment.member_id == member.id)
                .order_by(Enrollment.created_at, Enrollment.id)
            )
        ).all()
        pending = await session.scalar(
            select(ActivationCode.expires_at).where(ActivationCode.member_id == member.id)
        )
    return MemberProfile(
        id=member.id,
        member_number=member.member_number,
        email=member.email,
        created_at=member.created_at,
        activated=member.password_hash is not None,
        password_changed_at=member.password_changed_at,
        require_code_to_spend=member.require_code_to_spend,
        erased_at=member.erased_at,
        code_pending_until=pending if pending is not None and pending > clock.now() else None,
        links=[Link(p, ref, at) for p, ref, at in links],
    )


async def support_set_password(db: Database, principal: Principal, member_number: str, password: str) -> int:
    """Support sets a password (the member proved who they are some other way): the same rules,
    any pending code voided, every session of the member ended as by `confirm`, the change in the
    admin audit log (without the password)."""
    principal.require_admin("admin:partners")
    member_number = _checked_number(member_number)
    async with db.sessions() as session, session.begin():
        member_id = await session.scalar(
            select(Member.id).where(Member.member_number == member_number, Member.erased_at.is_(None))
        )
        if member_id is None:
            raise _member_not_found()
        revoked = await credentials.set_password_in(session, member_id, password)
        await session.execute(delete(ActivationCode).where(ActivationCode.member_id == member_id))
        await audit_log.record(session, principal, "members.set_password", member_number, {})
    await identity.applied_everywhere(db, revoked)
    return int(member_id)
