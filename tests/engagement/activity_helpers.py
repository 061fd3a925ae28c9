"""Building activities and recording them through the engagement service's own functions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.engagement import activities, activity_records
from services.engagement.activities import Activity, ActivityTerms
from services.engagement.activity_models import ActivityKind
from services.ledger.service import Outcome
from shared import sql
from shared.access import Principal
from shared.database import Database
from tests.factories import ADMIN, SeededPartner, unique


async def make_activity(
    db: Database,
    owner: SeededPartner | None,
    *,
    kind: ActivityKind = ActivityKind.REVIEW,
    points: int = 50,
    per_member_limit: int | None = None,
    cooldown: timedelta | None = None,
    code: str | None = None,
) -> Activity:
    """One activity of `owner` (None: the coalition's, created by an admin)."""
    principal = owner.principal if owner is not None else ADMIN
    return await activities.create_activity(
        db,
        principal,
        ActivityTerms(
            code=code or unique("ACT").upper(),
            name="An activity",
            kind=kind,
            points=points,
            per_member_limit=per_member_limit,
            cooldown=cooldown,
        ),
    )


async def record(
    db: Database,
    by: SeededPartner | Principal,
    member_number: str,
    activity: Activity | str,
    *,
    key: str | None = None,
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> Outcome:
    principal = by.principal if isinstance(by, SeededPartner) else by
    return await activity_records.record_activity(
        db,
        principal,
        idempotency_key=key or unique("key"),
        member_number=member_number,
        activity_code=activity.code if isinstance(activity, Activity) else activity,
        occurred_at=occurred_at,
        data=data,
    )


async def records_of(db: Database, member_id: int) -> list[dict[str, Any]]:
    async with sql.connection(db) as conn:
        rows = await conn.fetch("SELECT * FROM activity_records WHERE member_id = $1 ORDER BY id", member_id)
    return [dict(r) for r in rows]


def codes(outcome: Outcome) -> list[str]:
    return [str(e.code) for e in outcome.errors]
