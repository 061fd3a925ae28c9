"""The birthday bonus: each live BIRTHDAY activity pays its points to a member once a year, on the
member's birthday, by the worker job `birthday-bonuses`.

Rules, stated (docs/decisions.md, "Activities"):
- whose: a partner's BIRTHDAY activity pays the members linked to that partner; the coalition's
  pays every member; only members who gave a birth date (enrollMember, updateMemberSettings) and
  are not erased;
- when: on the birthday in the owner's time zone (partners' `timeZone`; the coalition's is UTC),
  or up to GRACE_DAYS - 1 days later, should no worker have run that day; a 29 February
  birthday is kept on 28 February in other years;
- once a year: the record carries the birthday's year, unique per (activity, member, year), so a
  second worker, a retry or a rerun pays nothing more; rounds of all workers are serialised by a
  transaction-scoped advisory lock (a second worker skips the round);
- the points are booked like a recorded activity's (services/engagement/activity_records.py):
  an ACTIVITY entry and a lot issued by the activity's owner, available at once.

Finding the day's members reads the expression index `ix_members_birthday` (month * 100 + day
of the birth date): a handful of days per activity, never a scan of the members.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.engagement import activities
from services.engagement.activity_records import earn_activity
from services.partners import coalition
from shared import sql
from shared.database import Database
from shared.errors import DomainError
from shared.sql import Sql

GRACE_DAYS = 7
LOCK = Sql("SELECT pg_try_advisory_xact_lock(7400000002)")
LIVE = Sql(
    f"SELECT {', '.join('a.' + c.strip() for c in activities.COLUMNS.split(','))}, p.time_zone"
    " FROM activities a"
    " JOIN partners p ON p.id = a.partner_id"
    " WHERE a.kind = 'BIRTHDAY' AND a.archived_at IS NULL ORDER BY a.id"
)
DUE = Sql(
    "SELECT m.id AS member_id, d.year"
    " FROM unnest(CAST(:keys AS int[]), CAST(:years AS int[])) AS d(key, year)"
    " JOIN members m ON m.birth_date IS NOT NULL AND m.erased_at IS NULL"
    "  AND (EXTRACT(MONTH FROM m.birth_date) * 100 + EXTRACT(DAY FROM m.birth_date)) = d.key"
    " WHERE (CAST(:everyone AS boolean) OR EXISTS (SELECT 1 FROM enrollments e"
    "  WHERE e.partner_id = :p AND e.member_id = m.id))"
    " AND NOT EXISTS (SELECT 1 FROM activity_records r WHERE r.activity_id = :a"
    "  AND r.member_id = m.id AND r.birthday_year = d.year)"
    " ORDER BY m.id LIMIT :batch"
)


@dataclass(frozen=True)
class BirthdayRound:
    paid: int
    points: int


def birthday_keys(today: date) -> list[tuple[int, int]]:
    """(month * 100 + day, year) of every birthday that falls on one of the last GRACE_DAYS days
    up to `today`: 29 February counts on 28 February in a year without it."""
    keys: list[tuple[int, int]] = []
    for back in range(GRACE_DAYS):
        day = today - timedelta(days=back)
        keys.append((day.month * 100 + day.day, day.year))
        if day.month == 2 and day.day == 28 and not _leap(day.year):
            keys.append((229, day.year))
    return keys


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


async def pay_birthday_bonuses(db: Database, now: datetime, batch: int) -> BirthdayRound:
    """One batch of due birthday bonuses, in one transaction (none if another worker holds the
    round)."""
    paid = points = 0
    async with sql.transaction(db) as conn:
        if not await LOCK.fetchval(conn):
            return BirthdayRound(0, 0)
        coalition_id = await coalition.coalition_issuer_id(conn)
        for row in await LIVE.fetch(conn):
            if paid >= batch:
                break
            activity = activities.Activity.of(row, coalition_id)
            today = now.astimezone(ZoneInfo(row["time_zone"] or "UTC")).date()
            keys = birthday_keys(today)
            due = await DUE.fetch(
                conn,
                keys=[k for k, _ in keys],
                years=[y for _, y in keys],
                everyone=activity.by_coalition,
                p=activity.partner_id,
                a=activity.id,
                batch=batch - paid,
            )
            for member in due:  # by member id: wallet locks in one order
                try:
                    async with conn.transaction():
                        await earn_activity(
                            db, conn, activity, member["member_id"], now, now, birthday_year=member["year"]
                        )
                except DomainError:  # erased meanwhile: the next round no longer finds them
                    continue
                paid += 1
                points += activity.points
    return BirthdayRound(paid, points)
