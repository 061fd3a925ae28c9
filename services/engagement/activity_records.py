"""Earning an activity (recordActivity) and what surveys say (npsScore).

Rules, stated (docs/decisions.md, "Activities"):
- a partner records its own activities, an admin the coalition's; the member must be linked to
  the partner (MEMBER_NOT_FOUND otherwise, the one answer for unknown and unlinked numbers, and
  counted against the client's lookup limit like an earn's); a coalition activity may name any
  member;
- the activity's points are booked by the ledger as an ACTIVITY entry and one lot issued by the
  activity's owner, available at once, expiring by the expiry policy from occurredAt;
- perMemberLimit counts the member's records of the activity, ever; cooldown refuses a record
  within the cooldown of another (before or after: a late record cannot slip between two);
  both are decided under the member's wallet lock, so concurrent records of one member see each
  other exactly (ACTIVITY_LIMIT_REACHED, ACTIVITY_COOLDOWN: refusals stored under the key);
- a SURVEY needs `data.npsScore`, a whole number 0-10, and may carry `data.comment` (≤ 2,000
  characters); `data` is a JSON object of at most 4 KB for every kind, kept with the record;
- BIRTHDAY activities are granted by the worker only (services/engagement/birthdays.py);
- exactly once per idempotencyKey, like every points-moving mutation.

NPS: promoters (9-10) minus detractors (0-6), as a percentage of the answers, rounded half away
from zero to a whole number (-100 to 100); null with no answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from services.engagement import activities
from services.engagement.activities import Activity
from services.engagement.activity_models import ActivityKind
from services.ledger import service as ledger
from services.ledger.models import EntryKind
from services.ledger.service import Outcome
from services.members import service as members
from services.partners import coalition
from shared import clock, sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, InputError, Validator
from shared.sql import DbConnection, Sql

OPERATION = "recordActivity"
MAX_DATA_BYTES = 4096
MAX_COMMENT = 2000
# An occurredAt this far ahead of the server's clock is a clock skew, not the future.
SKEW = timedelta(minutes=5)

SEEN = Sql(
    "SELECT count(*) AS n, COALESCE(bool_or(occurred_at > CAST(:at AS timestamptz) - CAST(:cd AS interval)"
    " AND occurred_at < CAST(:at AS timestamptz) + CAST(:cd AS interval)), false) AS near"
    " FROM activity_records WHERE activity_id = :a AND member_id = :m"
)
RECORD = Sql(
    "INSERT INTO activity_records (activity_id, member_id, partner_id, entry_id, points, occurred_at,"
    " recorded_at, nps_score, comment, data, birthday_year)"
    " VALUES (:a, :m, :p, :e, :points, :at, :now, :nps, :comment, CAST(:data AS jsonb), :year)"
)
NPS = Sql(
    "SELECT count(*) FILTER (WHERE nps_score >= 9) AS promoters,"
    " count(*) FILTER (WHERE nps_score BETWEEN 7 AND 8) AS passives,"
    " count(*) FILTER (WHERE nps_score <= 6) AS detractors"
    " FROM activity_records WHERE nps_score IS NOT NULL"
    " AND (CAST(:p AS bigint) IS NULL OR partner_id = :p)"
    " AND occurred_at >= :start AND occurred_at < :end"
)


@dataclass(frozen=True)
class Survey:
    nps_score: int | None
    comment: str | None


def check_data(v: Validator, data: Any) -> str | None:
    """`data` as stored (JSON text), or None; problems named under `data`."""
    if data is None:
        return None
    if not isinstance(data, dict):
        v.add("data", UserErrorCode.INVALID, "data must be a JSON object")
        return None
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    if len(text.encode()) > MAX_DATA_BYTES:
        v.add("data", UserErrorCode.TOO_LONG, f"data must be at most {MAX_DATA_BYTES} bytes of JSON")
        return None
    return text


def survey_of(kind: ActivityKind, data: dict[str, Any] | None) -> Survey:
    """A SURVEY's answer from `data` (DomainError naming data.npsScore / data.comment); other
    kinds carry none, whatever their data holds."""
    if kind != ActivityKind.SURVEY:
        return Survey(None, None)
    data = data or {}
    score = data.get("npsScore")
    v = Validator()
    if not (isinstance(score, int) and not isinstance(score, bool) and 0 <= score <= 10):
        v.add("data.npsScore", UserErrorCode.INVALID, "a SURVEY needs data.npsScore, a whole number 0 to 10")
    comment = data.get("comment")
    if comment is not None and not (isinstance(comment, str) and len(comment) <= MAX_COMMENT):
        v.add("data.comment", UserErrorCode.TOO_LONG, f"data.comment must be text of at most {MAX_COMMENT}")
    if v.errors:
        raise DomainError(v.errors)
    return Survey(score, comment.strip() or None if isinstance(comment, str) else None)


async def record_activity(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str,
    activity_code: str,
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> Outcome:
    """Earns the member the activity's points (the result: transaction_id, points, partner_id,
    occurred_at, activity_id), or userErrors."""
    activities.require_manager(principal)
    now = clock.now()
    v = Validator()
    ledger.check_common(v, idempotency_key, None)
    members.check_member_number(v, member_number)
    v.text(activity_code, "activityCode", max_length=activities.MAX_CODE)
    if occurred_at is not None and v.instant(occurred_at, "occurredAt"):
        v.check(occurred_at <= now + SKEW, "occurredAt", UserErrorCode.INVALID, "occurredAt is in the future")
    stored = check_data(v, data)
    v.raise_if_any()
    at = occurred_at or now
    if (await ledger.expiry_policy(db)).expiry_for(at, now) <= now:
        raise DomainError.single(
            UserErrorCode.TOO_OLD, "points for an activity this old would already have expired", "occurredAt"
        )
    request = {
        "memberNumber": member_number,
        "activityCode": activities.normal_code(activity_code),
        "occurredAt": occurred_at.isoformat() if occurred_at else None,
        "data": stored,
    }

    async def work(conn: DbConnection) -> dict[str, Any]:
        coalition_id = await coalition.coalition_issuer_id(conn)
        owner = principal.partner_id if principal.partner_id is not None else coalition_id
        activity = await activities.live_activity(conn, owner, activity_code, coalition_id)
        if activity is None:
            raise DomainError.single(
                UserErrorCode.ACTIVITY_NOT_FOUND, "you have no live activity with this code", "activityCode"
            )
        if activity.kind == ActivityKind.BIRTHDAY:
            raise DomainError.single(
                UserErrorCode.INVALID,
                "a BIRTHDAY activity is granted by the worker on the member's birthday",
                "activityCode",
            )
        survey = survey_of(activity.kind, data)
        found = await members.member_at_partner(conn, member_number, owner)
        if found is None or not (found.enrolled or activity.by_coalition):
            raise members.member_not_found()
        # A savepoint: a refusal below leaves nothing (the wallet the lock may open included)
        # beside the refusal stored under the key.
        async with conn.transaction():
            entry_id = await earn_activity(
                db, conn, activity, found.member_id, at, now, survey=survey, data=stored
            )
        return {
            "transaction_id": entry_id,
            "points": activity.points,
            "partner_id": activity.partner_id,
            "occurred_at": at.isoformat(),
            "activity_id": activity.id,
        }

    await members.refuse_if_rate_limited(db, principal)
    try:
        response = await ledger.run_idempotent(
            db,
            client_id=principal.client_id,
            key=idempotency_key,
            operation=OPERATION,
            request=request,
            work=work,
        )
    except InputError as exc:
        return Outcome(result=None, errors=exc.errors)
    outcome = Outcome.of(response)
    if any(e.code == UserErrorCode.MEMBER_NOT_FOUND for e in outcome.errors):
        await members.note_lookup_miss(db, principal)
    return outcome


async def earn_activity(
    db: Database,
    conn: DbConnection,
    activity: Activity,
    member_id: int,
    at: datetime,
    now: datetime,
    *,
    survey: Survey = Survey(None, None),
    data: str | None = None,
    birthday_year: int | None = None,
) -> int:
    """Books the activity's points for the member and records it, in the caller's transaction,
    under the member's wallet lock (taken here first: the limits below are exact). The ledger's
    ACTIVITY entry id. DomainError ACTIVITY_LIMIT_REACHED / ACTIVITY_COOLDOWN, or
    MEMBER_NOT_FOUND for a member erased meanwhile."""
    await ledger.lock_wallet(conn, member_id)
    cooldown = activity.cooldown or timedelta(0)
    seen = await SEEN.fetchrow(conn, a=activity.id, m=member_id, at=at, cd=cooldown)
    assert seen is not None
    if activity.per_member_limit is not None and seen["n"] >= activity.per_member_limit:
        raise DomainError.single(
            UserErrorCode.ACTIVITY_LIMIT_REACHED,
            f"the member has earned {activity.code} {seen['n']} times, its limit",
            "activityCode",
        )
    if activity.cooldown is not None and seen["near"]:
        raise DomainError.single(
            UserErrorCode.ACTIVITY_COOLDOWN,
            f"the member did {activity.code} less than {activity.cooldown} from this occurredAt",
            "occurredAt",
        )
    credit = await ledger.credit_points(
        db,
        conn,
        member_id=member_id,
        points=activity.points,
        reference=f"activity:{activity.code}",
        now=now,
        kind=EntryKind.ACTIVITY,
        issuer_id=activity.partner_id,
        occurred_at=at,
    )
    if credit is None:
        raise members.member_not_found()
    await RECORD.execute(
        conn,
        a=activity.id,
        m=member_id,
        p=activity.partner_id,
        e=credit.entry_id,
        points=activity.points,
        at=at,
        now=now,
        nps=survey.nps_score,
        comment=survey.comment,
        data=data,
        year=birthday_year,
    )
    return credit.entry_id


@dataclass(frozen=True)
class NpsScore:
    score: int | None  # -100..100; None with no answers
    promoters: int
    passives: int
    detractors: int

    @property
    def responses(self) -> int:
        return self.promoters + self.passives + self.detractors


async def nps_score(
    db: Database, principal: Principal, partner_id: int | None, start: datetime, end: datetime
) -> NpsScore:
    """The Net Promoter Score of SURVEY answers that occurred in [start, end): a partner's own
    (partner_id its own or None); an admin's of one partner, or of every survey in the coalition
    (None). INVALID `to` when it is not after `from`."""
    activities.require_manager(principal)
    v = Validator()
    if v.instant(start, "from") and v.instant(end, "to"):
        v.check(end > start, "to", UserErrorCode.INVALID, "to must be after from")
    v.raise_if_any()
    async with sql.connection(db) as conn:
        scope: int | None = None  # an admin without partnerId: every survey in the coalition
        if principal.partner_id is not None or partner_id is not None:
            scope = await activities.owner_of(db, conn, principal, partner_id)
        row = await NPS.fetchrow(conn, p=scope, start=start, end=end)
    assert row is not None
    promoters, passives, detractors = int(row["promoters"]), int(row["passives"]), int(row["detractors"])
    total = promoters + passives + detractors
    score = None
    if total:
        exact = Decimal(100 * (promoters - detractors)) / Decimal(total)
        score = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return NpsScore(score, promoters, passives, detractors)
