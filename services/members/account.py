"""What a member does with their own account: see their profile and links, unlink a partner, set
their spending consent, their language and which kinds of mail they get. Every function takes
the member's own principal (`require_member`): a member acts only as themselves, never by
argument.

Unlinking deletes the enrolment row, which is all tenancy hangs on (`service.py`): the partner then
gets MEMBER_NOT_FOUND for the member exactly as for a stranger. Each gateway process remembers
links (`service.cached_member_at_partner`), so the unlinking transaction also notifies every
process (`propagation.py`), and the call answers once they have all forgotten the link.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from asyncpg import Record

from services.members import events, propagation
from services.members.mail_preferences import COLUMNS, MailTopic, normalize_language
from services.members.models import LinkHow as LinkHow  # re-exported: Me.links' enum
from services.members.service import MEMBER_NUMBER, check_birth_date
from shared import sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.sql import Sql


@dataclass(frozen=True)
class Profile:
    member_id: int
    member_number: str
    email: str | None


@dataclass(frozen=True)
class Link:
    partner_id: int
    linked_at: datetime
    how: LinkHow


@dataclass(frozen=True)
class Settings:
    require_code_to_spend: bool
    language: str | None = None
    # The kinds of member mail the member gets (every kind unless they opted out).
    mail: frozenset[MailTopic] = frozenset(MailTopic)
    birth_date: date | None = None


_SETTINGS_COLUMNS = f"require_code_to_spend, language, birth_date, {', '.join(COLUMNS.values())}"
PROFILE = Sql(f"SELECT member_number, email, {_SETTINGS_COLUMNS} FROM members WHERE id = :m")
LINKS = Sql(
    "SELECT partner_id, created_at, partner_customer_ref IS NOT NULL AS enrolled FROM enrollments"
    " WHERE member_id = :m ORDER BY created_at, partner_id"
)
PARTNER_EXISTS = Sql("SELECT 1 FROM partners WHERE id = :p")
BIRTH_DATE = Sql("SELECT birth_date FROM members WHERE id = :m FOR UPDATE")


UNLINK = Sql("DELETE FROM enrollments WHERE member_id = :m AND partner_id = :p RETURNING 1")
UPDATE_SETTINGS = Sql(
    "UPDATE members SET require_code_to_spend = COALESCE(CAST(:require AS boolean), require_code_to_spend),"
    " language = COALESCE(CAST(:language AS text), language),"
    " birth_date = COALESCE(birth_date, CAST(:birth_date AS date)),"
    + "".join(
        f" {column} = COALESCE(CAST(:{column} AS boolean), {column})," for column in COLUMNS.values()
    ).rstrip(",")
    + f" WHERE id = :m RETURNING {_SETTINGS_COLUMNS}"
)


def _settings(row: Record | None) -> Settings:
    if row is None:
        return Settings(require_code_to_spend=False)
    return Settings(
        require_code_to_spend=bool(row["require_code_to_spend"]),
        language=row["language"],
        mail=frozenset(t for t, column in COLUMNS.items() if row[column]),
        birth_date=row["birth_date"],
    )


async def profile(db: Database, principal: Principal) -> Profile:
    member_id = principal.require_member()
    async with sql.connection(db) as conn:
        row = await PROFILE.fetchrow(conn, m=member_id)
    if row is None:  # a token outliving its member (erasure keeps the row, so: never yet)
        raise DomainError.single(UserErrorCode.MEMBER_NOT_FOUND, "no such member", "memberNumber")
    return Profile(member_id, row["member_number"], row["email"])


async def settings(db: Database, principal: Principal) -> Settings:
    member_id = principal.require_member()
    async with sql.connection(db) as conn:
        row = await PROFILE.fetchrow(conn, m=member_id)
    return _settings(row)


async def links(db: Database, principal: Principal) -> list[Link]:
    """The partners the member is linked to, oldest link first."""
    member_id = principal.require_member()
    async with sql.connection(db) as conn:
        rows = await LINKS.fetch(conn, m=member_id)
    return [
        Link(r["partner_id"], r["created_at"], LinkHow.ENROLLED if r["enrolled"] else LinkHow.CARD_PRESENTED)
        for r in rows
    ]


async def update_settings(
    db: Database,
    principal: Principal,
    *,
    require_code_to_spend: bool | None,
    language: str | None = None,
    mail: Mapping[MailTopic, bool | None] | None = None,
    birth_date: date | None = None,
) -> Settings:
    """Changes what is given (null leaves a setting as it is; at least one must be given).
    `mail` opts the member in (True) or out (False) of each kind of member mail it names.
    `birth_date` is set once (it pays birthday bonuses: a member cannot move it to earn another;
    support corrects a wrong one): giving another once set is INVALID, the same one is no change."""
    member_id = principal.require_member()
    mail = {topic: value for topic, value in (mail or {}).items() if value is not None}
    if require_code_to_spend is None and language is None and not mail and birth_date is None:
        raise DomainError.single(UserErrorCode.REQUIRED, "give a setting to change", "requireCodeToSpend")
    if birth_date is not None:
        check_birth_date(birth_date)
    if language is not None:
        try:
            language = normalize_language(language)
        except ValueError as exc:
            raise DomainError.single(UserErrorCode.INVALID, str(exc), "language") from None
    async with sql.transaction(db) as conn:
        if birth_date is not None:
            current = await BIRTH_DATE.fetchval(conn, m=member_id)
            if current is not None and current != birth_date:
                raise DomainError.single(
                    UserErrorCode.INVALID,
                    "birthDate is set already; ask the coalition's support to correct it",
                    "birthDate",
                )
        row = await UPDATE_SETTINGS.fetchrow(
            conn,
            m=member_id,
            require=require_code_to_spend,
            language=language,
            birth_date=birth_date,
            **{column: mail.get(topic) for topic, column in COLUMNS.items()},
        )
    return _settings(row)


async def unlink_partner(db: Database, principal: Principal, partner_id: int | None) -> int:
    """Removes the member's link to a partner; returns the partner's id. The partner's customer
    ref goes with the row. Points earned there stay the member's (the books do not change); a later
    earn by presenting the card links the member again."""
    member_id = principal.require_member()
    async with sql.connection(db) as conn:
        if partner_id is None or not await PARTNER_EXISTS.fetchval(conn, p=partner_id):
            raise DomainError.single(UserErrorCode.PARTNER_NOT_FOUND, "no partner has this id", "partnerId")
        async with conn.transaction():
            number = await MEMBER_NUMBER.fetchval(conn, id=member_id)
            if not await UNLINK.fetchval(conn, m=member_id, p=partner_id):
                raise DomainError.single(
                    UserErrorCode.NOT_LINKED, "you are not linked to this partner", "partnerId"
                )
            notice = await propagation.notify_unlinked(conn, number, partner_id)
            await events.record_unlinked(conn, member_id, number, partner_id)
    propagation.forget_link(db, number, partner_id)  # this process at once, listener or not
    await propagation.applied_everywhere(db, notice)
    return partner_id
