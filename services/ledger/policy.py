"""The coalition's expiry policy: how long points live, and whether activity extends them.

Read on every earn and redemption, changed rarely by an admin: cached per process for
PARTNER_CACHE_SECONDS, like partner terms, so a change reaches every gateway within seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.ledger.models import ExpiryMode
from shared import audit_log, clock, sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import Validator
from shared.settings import get_settings
from shared.sql import DbConnection, Sql, transaction

POLICY = Sql("SELECT months, mode FROM expiry_policy WHERE id = 1")
SET_POLICY = Sql(
    "INSERT INTO expiry_policy (id, months, mode, updated_at, updated_by)"
    " VALUES (1, :months, :mode, :at, :by) ON CONFLICT (id) DO UPDATE"
    " SET months = EXCLUDED.months, mode = EXCLUDED.mode, updated_at = EXCLUDED.updated_at,"
    " updated_by = EXCLUDED.updated_by"
)
CACHE_KEY = ("expiry-policy",)
EXTEND = Sql(
    "UPDATE lots SET expires_at = :until WHERE member_id = :m AND remaining > 0"
    " AND expired_at IS NULL AND expires_at > :now AND expires_at < :until"
)


@dataclass(frozen=True)
class Policy:
    months: int
    mode: str

    @property
    def activity_extends(self) -> bool:
        return self.mode == ExpiryMode.ACTIVITY_EXTENDS

    def expiry_for(self, earned_at: datetime, now: datetime) -> datetime:
        """When points earned at `earned_at` (recorded `now`) expire."""
        per_lot = clock.add_months(earned_at, self.months)
        return max(per_lot, clock.add_months(now, self.months)) if self.activity_extends else per_lot


def _default() -> Policy:
    settings = get_settings()
    return Policy(settings.points_expiry_months, settings.points_expiry_mode)


async def current(db: Database, conn: DbConnection) -> Policy:
    async def load() -> Policy:
        row = await POLICY.fetchrow(conn)
        return Policy(row["months"], row["mode"]) if row else _default()

    policy = await db.cache.get_or_load(CACHE_KEY, get_settings().partner_cache_seconds, load)
    assert policy is not None
    return policy


async def on_activity(conn: DbConnection, policy: Policy, member_id: int, now: datetime) -> None:
    """Under ACTIVITY_EXTENDS an earn or redemption pushes all the member's live lots to
    now + N months (never shortens one, never revives an expired one)."""
    if policy.activity_extends:
        await EXTEND.execute(conn, m=member_id, now=now, until=clock.add_months(now, policy.months))


async def update_policy(db: Database, principal: Principal, *, months: int, mode: str) -> Policy:
    """Applies to points earned and activity from now on; lots already earned keep their date
    (a longer policy would otherwise revive what members were told had expired). This process
    uses the new policy at once, the others within PARTNER_CACHE_SECONDS."""
    principal.require_admin("admin:partners")
    v = Validator()
    v.check(1 <= months <= 240, "months", UserErrorCode.INVALID_AMOUNT, "months must be between 1 and 240")
    v.check(
        mode in (ExpiryMode.PER_LOT, ExpiryMode.ACTIVITY_EXTENDS),
        "mode",
        UserErrorCode.INVALID,
        "mode must be PER_LOT or ACTIVITY_EXTENDS",
    )
    v.raise_if_any()
    async with transaction(db) as conn:
        await SET_POLICY.execute(conn, months=months, mode=mode, at=clock.now(), by=principal.client_id)
        await audit_log.record_on(
            conn, principal, "expiry_policy.update", "expiry_policy", {"months": months, "mode": mode}
        )
    db.cache.forget(CACHE_KEY)
    return Policy(months, ExpiryMode(mode))


async def read_policy(db: Database) -> Policy:
    """The policy as stored (not the cached copy the hot paths use)."""
    async with sql.connection(db) as conn:
        row = await POLICY.fetchrow(conn)
    return Policy(row["months"], row["mode"]) if row else _default()
