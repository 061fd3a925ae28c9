"""Activities: what a partner (or the coalition) rewards beyond purchases — a review, a newsletter
sign-up, a survey, a completed profile, a birthday. This module defines them (createActivity,
archiveActivity, activities); earning one is services/engagement/activity_records.py, the
birthday bonus services/engagement/birthdays.py.

Who owns what (docs/decisions.md, "Activities"):
- a partner (scope `activities:write`) defines, lists and records its own activities; their
  points are issued by it, settled like its purchases' points (issue fee when issued; its lot
  priced when redeemed or expired);
- a coalition admin (`admin:partners`) defines the coalition's own activities (no partnerId),
  whose points the coalition issues, and may define or list any partner's (partnerId);
- codes are unique per owner among live activities, case-insensitive (stored upper case); an
  archived activity earns nothing more and frees its code;
- an owner has at most one live BIRTHDAY activity: two would pay a member twice on one day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.engagement.activity_models import ActivityKind
from services.partners import coalition
from services.partners import service as partners
from services.partners.models import PartnerKind
from shared import audit_log, clock, sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Forbidden, Validator
from shared.sql import DbConnection, Sql

SCOPE = "activities:write"
ADMIN_SCOPE = "admin:partners"
MAX_CODE = 50
CODE_SHAPE = re.compile(r"^[A-Z0-9][A-Z0-9_.-]*$")
MAX_NAME = 100
MAX_POINTS = 1_000_000
MAX_LIMIT = 1_000_000
MAX_COOLDOWN = timedelta(days=3660)

COLUMNS = (
    "id, partner_id, code, name, kind, points, per_member_limit, cooldown_seconds, created_at, archived_at"
)
INSERT = Sql(
    "INSERT INTO activities (partner_id, code, name, kind, points, per_member_limit, cooldown_seconds)"
    f" VALUES (:p, :code, :name, :kind, :points, :limit, :cooldown) RETURNING {COLUMNS}"
)
CODE_USED = Sql(
    "SELECT 1 FROM activities WHERE partner_id = :p AND upper(code) = :code AND archived_at IS NULL"
)
BIRTHDAY_USED = Sql(
    "SELECT 1 FROM activities WHERE partner_id = :p AND kind = 'BIRTHDAY' AND archived_at IS NULL"
)
OWNED = Sql(f"SELECT {COLUMNS} FROM activities WHERE partner_id = :p ORDER BY id")
BY_ID = Sql(f"SELECT {COLUMNS} FROM activities WHERE id = :id FOR UPDATE")
ARCHIVE = Sql(f"UPDATE activities SET archived_at = :now WHERE id = :id RETURNING {COLUMNS}")
LIVE_BY_CODE = Sql(
    f"SELECT {COLUMNS} FROM activities WHERE partner_id = :p AND upper(code) = upper(:code)"
    " AND archived_at IS NULL"
)


@dataclass(frozen=True)
class Activity:
    id: int
    partner_id: int  # the issuer of its points (the coalition's partners row for its own)
    code: str
    name: str
    kind: ActivityKind
    points: int
    per_member_limit: int | None
    cooldown: timedelta | None
    created_at: datetime
    archived_at: datetime | None
    by_coalition: bool = False

    @classmethod
    def of(cls, row: asyncpg.Record, coalition_id: int) -> Activity:
        cooldown = row["cooldown_seconds"]
        return cls(
            id=row["id"],
            partner_id=row["partner_id"],
            code=row["code"],
            name=row["name"],
            kind=ActivityKind(row["kind"]),
            points=row["points"],
            per_member_limit=row["per_member_limit"],
            cooldown=timedelta(seconds=cooldown) if cooldown is not None else None,
            created_at=row["created_at"],
            archived_at=row["archived_at"],
            by_coalition=row["partner_id"] == coalition_id,
        )


@dataclass(frozen=True)
class ActivityTerms:
    code: str
    name: str
    kind: ActivityKind
    points: int
    per_member_limit: int | None = None
    cooldown: timedelta | None = None


def normal_code(code: str) -> str:
    return code.strip().upper()


async def owner_of(db: Database, conn: DbConnection, principal: Principal, partner_id: int | None) -> int:
    """The partners row whose activities the caller manages: a partner only its own (naming another
    is PARTNER_NOT_FOUND, as an unknown one); an admin the coalition's (no partnerId) or any
    partner's. Charities and the coalition row itself are no partner to name."""
    if principal.partner_id is not None:
        principal.require(SCOPE)
        if partner_id is not None and partner_id != principal.partner_id:
            raise DomainError.single(UserErrorCode.PARTNER_NOT_FOUND, "no such partner", "partnerId")
        return principal.partner_id
    if not principal.is_admin:
        raise Forbidden(f"activities are managed by their partner ({SCOPE}) or coalition admins")
    principal.require(ADMIN_SCOPE)
    if partner_id is None:
        return await coalition.coalition_issuer_id(conn)
    found = await partners.cached_partner(db, conn, partner_id)
    if found is None or found.kind != PartnerKind.PARTNER:
        raise DomainError.single(UserErrorCode.PARTNER_NOT_FOUND, "no such partner", "partnerId")
    return partner_id


def require_manager(principal: Principal) -> None:
    """Who may manage or record activities at all, asked before anything about the input: a
    partner with `activities:write`, or an admin with `admin:partners`."""
    if principal.partner_id is not None:
        principal.require(SCOPE)
    elif principal.is_admin:
        principal.require(ADMIN_SCOPE)
    else:
        raise Forbidden(f"activities are managed by their partner ({SCOPE}) or coalition admins")


def check_terms(v: Validator, terms: ActivityTerms) -> None:
    v.text(terms.code, "code", max_length=MAX_CODE)
    if terms.code.strip():
        v.check(
            bool(CODE_SHAPE.match(normal_code(terms.code))),
            "code",
            UserErrorCode.INVALID,
            "code must be letters, digits, '_', '.' or '-', starting with a letter or digit",
        )
    v.text(terms.name, "name", max_length=MAX_NAME)
    v.check(
        0 < terms.points <= MAX_POINTS,
        "points",
        UserErrorCode.INVALID_AMOUNT,
        f"points must be between 1 and {MAX_POINTS:,}",
    )
    if terms.per_member_limit is not None:
        v.check(
            0 < terms.per_member_limit <= MAX_LIMIT,
            "perMemberLimit",
            UserErrorCode.INVALID,
            f"perMemberLimit must be between 1 and {MAX_LIMIT:,}, or null for no limit",
        )
    if terms.cooldown is not None:
        v.check(
            timedelta(seconds=1) <= terms.cooldown <= MAX_COOLDOWN,
            "cooldown",
            UserErrorCode.INVALID_DURATION,
            "cooldown must be at least one second and at most ten years, or null for none",
        )
    if terms.kind == ActivityKind.BIRTHDAY:
        v.check(
            terms.per_member_limit is None and terms.cooldown is None,
            "perMemberLimit",
            UserErrorCode.INVALID,
            "a BIRTHDAY activity is granted once a year by the worker: it takes no perMemberLimit"
            " or cooldown",
        )


async def create_activity(
    db: Database, principal: Principal, terms: ActivityTerms, partner_id: int | None = None
) -> Activity:
    """A new live activity of the caller's (or, for an admin, the coalition's or `partner_id`'s).
    userErrors: REQUIRED/TOO_LONG/INVALID code and name, CODE_TAKEN, INVALID_AMOUNT points,
    INVALID perMemberLimit (or a second live BIRTHDAY activity: kind), INVALID_DURATION cooldown,
    PARTNER_NOT_FOUND."""
    require_manager(principal)
    v = Validator()
    check_terms(v, terms)
    v.raise_if_any()
    code = normal_code(terms.code)
    async with sql.transaction(db) as conn:
        owner = await owner_of(db, conn, principal, partner_id)
        if await CODE_USED.fetchval(conn, p=owner, code=code):
            v.add("code", UserErrorCode.CODE_TAKEN, f"an activity with the code {code} exists")
        if terms.kind == ActivityKind.BIRTHDAY and await BIRTHDAY_USED.fetchval(conn, p=owner):
            v.add("kind", UserErrorCode.INVALID, "a live BIRTHDAY activity exists: archive it first")
        v.raise_if_any()
        try:
            async with conn.transaction():
                row = await INSERT.fetchrow(
                    conn,
                    p=owner,
                    code=code,
                    name=terms.name.strip(),
                    kind=str(terms.kind),
                    points=terms.points,
                    limit=terms.per_member_limit,
                    cooldown=int(terms.cooldown.total_seconds()) if terms.cooldown else None,
                )
        except asyncpg.UniqueViolationError as exc:  # a racing createActivity took it
            field = "kind" if exc.constraint_name == "uq_activities_one_birthday" else "code"
            code_of = UserErrorCode.INVALID if field == "kind" else UserErrorCode.CODE_TAKEN
            raise DomainError.single(code_of, f"another live activity has this {field}", field) from exc
        assert row is not None
        await audit_log.record_on(conn, principal, "activity.create", f"activity:{row['id']}", {"code": code})
        return Activity.of(row, await coalition.coalition_issuer_id(conn))


async def archive_activity(db: Database, principal: Principal, activity_id: int) -> Activity:
    """Archives one of the caller's activities: it earns nothing from now on, its records stay,
    its code is free again. Archiving an archived one changes nothing. ACTIVITY_NOT_FOUND for
    an unknown id or another owner's (the same answer)."""
    require_manager(principal)
    async with sql.transaction(db) as conn:
        row = await BY_ID.fetchrow(conn, id=activity_id)
        missing = DomainError.single(UserErrorCode.ACTIVITY_NOT_FOUND, "no such activity", "activityId")
        if row is None:
            raise missing
        if principal.partner_id is not None:  # a partner archives its own only
            principal.require(SCOPE)
            if row["partner_id"] != principal.partner_id:
                raise missing
        else:
            await owner_of(db, conn, principal, None)  # an admin, with admin:partners
        if row["archived_at"] is None:
            row = await ARCHIVE.fetchrow(conn, id=activity_id, now=clock.now())
            await audit_log.record_on(conn, principal, "activity.archive", f"activity:{activity_id}", {})
        assert row is not None
        return Activity.of(row, await coalition.coalition_issuer_id(conn))


async def activities(db: Database, principal: Principal, partner_id: int | None) -> list[Activity]:
    """The owner's activities (archived ones too), oldest first."""
    async with sql.connection(db) as conn:
        owner = await owner_of(db, conn, principal, partner_id)
        coalition_id = await coalition.coalition_issuer_id(conn)
        return [Activity.of(r, coalition_id) for r in await OWNED.fetch(conn, p=owner)]


async def live_activity(conn: DbConnection, owner: int, code: str, coalition_id: int) -> Activity | None:
    row = await LIVE_BY_CODE.fetchrow(conn, p=owner, code=code.strip())
    return Activity.of(row, coalition_id) if row else None
