"""Generating promo codes for a promotion (`generate`), listing a promotion's batches, and reading
a batch's codes back as a stream for export (`export_rows`).

Who may: a partner with `rules:write` for its own promotions (another partner's, or a coalition
promotion, is FORBIDDEN); a coalition admin with `admin:partners` for any (audit-logged).

A batch is up to MAX_COUNT codes written by one set-based INSERT (unnest of an array) in one
transaction; a code that happens to exist already (29^10 bodies make it a once-in-billions event)
is drawn again. The codes come back in the answer only up to RETURN_LIMIT; a bigger batch is read
back with `coalition promo export BATCH` (streamed, flat memory).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from services.earning import promo_code_format as fmt
from shared import audit_log, clock, sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Forbidden, Validator
from shared.sql import DbConnection, Sql

SCOPE = "rules:write"
ADMIN_SCOPE = "admin:partners"
MAX_COUNT = 100_000
RETURN_LIMIT = 1_000
MAX_USES = 1_000_000
MAX_DRAWS = 5  # rounds of redrawing collided codes before giving up (never needed in practice)

PROMOTION = Sql("SELECT partner_id, ends_at, archived_at FROM promotions WHERE id = :id")
NEW_BATCH = Sql(
    "INSERT INTO promo_code_batches (promotion_id, partner_id, prefix, count, uses_per_code,"
    " uses_per_member, expires_at, created_by)"
    " VALUES (:promotion, :partner, :prefix, :count, :per_code, :per_member, :expires, :by)"
    " RETURNING id, created_at"
)
INSERT_CODES = Sql(
    "INSERT INTO promo_codes (batch_id, code) SELECT CAST(:batch AS bigint), unnest(CAST(:codes AS text[]))"
    " ON CONFLICT (code) DO NOTHING RETURNING code"
)
BATCH_COLUMNS = (
    "id, promotion_id, partner_id, prefix, count, uses_per_code, uses_per_member, expires_at, created_at"
)
BATCHES = Sql(f"SELECT {BATCH_COLUMNS} FROM promo_code_batches WHERE promotion_id = :promotion ORDER BY id")
BATCH = Sql(f"SELECT {BATCH_COLUMNS} FROM promo_code_batches WHERE id = :id")
EXPORT = (
    "SELECT c.code, b.uses_per_code, c.uses, b.expires_at,"
    " CASE WHEN b.expires_at IS NOT NULL AND b.expires_at <= $2 THEN 'EXPIRED'"
    "      WHEN c.uses >= b.uses_per_code THEN 'USED_UP' ELSE 'ACTIVE' END AS status"
    " FROM promo_codes c JOIN promo_code_batches b ON b.id = c.batch_id WHERE c.batch_id = $1 ORDER BY c.id"
)


@dataclass(frozen=True)
class Batch:
    id: int
    promotion_id: int
    partner_id: int | None
    prefix: str
    count: int
    uses_per_code: int
    uses_per_member: int | None
    expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Generated:
    batch: Batch
    codes: list[str] | None  # None past RETURN_LIMIT: export them


@dataclass(frozen=True)
class BatchTerms:
    promotion_id: int
    count: int
    prefix: str = ""
    uses_per_code: int = 1
    uses_per_member: int | None = None
    expires_at: datetime | None = None


def _batch(row: object) -> Batch:
    return Batch(**{k: row[k] for k in Batch.__dataclass_fields__})  # type: ignore[index]


def require_access(principal: Principal) -> None:
    """FORBIDDEN unless a partner with rules:write or an admin with admin:partners: checked before
    anything about the input is looked at."""
    if principal.partner_id is not None:
        principal.require(SCOPE)
    elif principal.is_admin:
        principal.require(ADMIN_SCOPE)
    else:
        raise Forbidden("promo codes are managed by their promotion's partner (rules:write) or admins")


async def _promotion_for(conn: DbConnection, principal: Principal, promotion_id: int) -> dict[str, object]:
    """The promotion, if the caller may manage its codes: PROMOTION_NOT_FOUND for an unknown one,
    FORBIDDEN for another partner's (or, for a partner, a coalition promotion)."""
    require_access(principal)
    row = await PROMOTION.fetchrow(conn, id=promotion_id)
    if row is None:
        raise DomainError.single(UserErrorCode.PROMOTION_NOT_FOUND, "no promotion has this id", "promotionId")
    if principal.partner_id is not None and row["partner_id"] != principal.partner_id:
        raise Forbidden("this promotion is not yours: a partner generates codes for its own promotions")
    return dict(row)


def check(v: Validator, terms: BatchTerms, now: datetime) -> str:
    """Every check of the terms; the normalised prefix."""
    prefix = fmt.normalise(terms.prefix)
    problem = fmt.prefix_problem(prefix)
    v.check(problem is None, "prefix", UserErrorCode.INVALID, problem or "")
    v.check(
        1 <= terms.count <= MAX_COUNT,
        "count",
        UserErrorCode.INVALID,
        f"count must be between 1 and {MAX_COUNT:,} (generate several batches for more)",
    )
    v.check(
        1 <= terms.uses_per_code <= MAX_USES,
        "usesPerCode",
        UserErrorCode.INVALID,
        f"usesPerCode must be between 1 and {MAX_USES:,}",
    )
    if terms.uses_per_member is not None:
        v.check(
            1 <= terms.uses_per_member <= MAX_USES,
            "usesPerMember",
            UserErrorCode.INVALID,
            f"usesPerMember, when sent, must be between 1 and {MAX_USES:,}",
        )
    if terms.expires_at is not None and v.instant(terms.expires_at, "expiresAt"):
        v.check(terms.expires_at > now, "expiresAt", UserErrorCode.IN_PAST, "expiresAt must be in the future")
    return prefix


async def generate(db: Database, principal: Principal, terms: BatchTerms) -> Generated:
    """A new batch of `count` distinct codes for the promotion, in one transaction."""
    require_access(principal)
    now = clock.now()
    v = Validator()
    prefix = check(v, terms, now)
    v.raise_if_any()
    async with sql.transaction(db) as conn:
        promotion = await _promotion_for(conn, principal, terms.promotion_id)
        ended = [t for t in (promotion["ends_at"], promotion["archived_at"]) if t is not None]
        if any(t <= now for t in ended):  # type: ignore[operator]
            raise DomainError.single(
                UserErrorCode.INVALID,
                "this promotion has ended: its codes could never be used",
                "promotionId",
            )
        row = await NEW_BATCH.fetchrow(
            conn,
            promotion=terms.promotion_id,
            partner=promotion["partner_id"],
            prefix=prefix,
            count=terms.count,
            per_code=terms.uses_per_code,
            per_member=terms.uses_per_member,
            expires=terms.expires_at,
            by=principal.client_id,
        )
        assert row is not None
        stored: list[str] = []
        for _ in range(MAX_DRAWS):
            wanted = terms.count - len(stored)
            if wanted == 0:
                break
            drawn = {fmt.new_code(prefix) for _ in range(wanted)}
            stored += [r["code"] for r in await INSERT_CODES.fetch(conn, batch=row["id"], codes=list(drawn))]
        if len(stored) != terms.count:  # pragma: no cover - needs a collision five times running
            raise RuntimeError("could not draw enough distinct promo codes")
        if principal.is_admin:
            await audit_log.record_on(
                conn,
                principal,
                "generatePromoCodes",
                f"promotion:{terms.promotion_id}",
                {"batch": row["id"], "count": terms.count, "prefix": prefix},
            )
        batch = Batch(
            id=row["id"],
            promotion_id=terms.promotion_id,
            partner_id=promotion["partner_id"],  # type: ignore[arg-type]
            prefix=prefix,
            count=terms.count,
            uses_per_code=terms.uses_per_code,
            uses_per_member=terms.uses_per_member,
            expires_at=terms.expires_at,
            created_at=row["created_at"],
        )
    return Generated(batch, stored if terms.count <= RETURN_LIMIT else None)


async def batches(db: Database, principal: Principal, promotion_id: int) -> list[Batch]:
    """A promotion's batches, oldest first (same access as `generate`)."""
    async with sql.connection(db) as conn:
        await _promotion_for(conn, principal, promotion_id)
        return [_batch(r) for r in await BATCHES.fetch(conn, promotion=promotion_id)]


async def batch(db: Database, batch_id: int) -> Batch | None:
    """A batch by id, for the CLI (an admin's tool: no tenancy check)."""
    async with sql.connection(db) as conn:
        row = await BATCH.fetchrow(conn, id=batch_id)
    return _batch(row) if row is not None else None


async def export_rows(
    db: Database, batch_id: int
) -> AsyncIterator[tuple[str, int, int, datetime | None, str]]:
    """The batch's codes as (code, uses_per_code, uses, expires_at, status), read through a
    server-side cursor so a 100,000-code batch never sits in memory. status: ACTIVE, USED_UP or
    EXPIRED (now)."""
    async with sql.transaction(db) as conn:
        async for r in conn.cursor(EXPORT, batch_id, clock.now(), prefetch=2_000):
            yield r["code"], r["uses_per_code"], r["uses"], r["expires_at"], r["status"]
