"""Engagement's scheduled jobs (run by `coalition worker`): tier anniversaries past their grace
period are reviewed and downgraded to what the points still qualify for (services/engagement/tiers.py);
referrers are paid their bonus once the referred member's first purchase is available
(services/engagement/referral_bonuses.py); BIRTHDAY activities pay members on their birthday
(services/engagement/birthdays.py)."""

from __future__ import annotations

from datetime import datetime

from services.engagement import birthdays, referral_bonuses, tiers
from services.ledger.scheduled import BatchResult, ScheduledJob, counted
from shared.database import Database


async def review_tier_anniversaries(db: Database, now: datetime, batch: int) -> BatchResult:
    done = await tiers.review_anniversaries(db, now, batch)
    return BatchResult(rows=done.reviewed, points=done.downgraded)


def _reviewed(r: BatchResult) -> str:
    # "anniversary" takes "-ies", which `counted` does not know: said as "tier reviews".
    return f"reviewed {counted(r.rows, 'tier')} past anniversary and grace ({counted(r.points, 'downgrade')})"


async def pay_referral_bonuses(db: Database, now: datetime, batch: int) -> BatchResult:
    done = await referral_bonuses.pay_referral_bonuses(db, now, batch)
    return BatchResult(rows=done.checked, points=done.points)


def _paid(r: BatchResult) -> str:
    return f"checked {counted(r.rows, 'referral')} for a bonus ({counted(r.points, 'bonus point')} paid)"


async def pay_birthday_bonuses(db: Database, now: datetime, batch: int) -> BatchResult:
    done = await birthdays.pay_birthday_bonuses(db, now, batch)
    return BatchResult(rows=done.paid, points=done.points)


def _birthdays(r: BatchResult) -> str:
    # "bonus" takes "-es", which `counted` does not know.
    return f"paid {r.rows:,} birthday bonus{'' if r.rows == 1 else 'es'} ({counted(r.points, 'point')})"


JOBS: list[ScheduledJob] = [
    ScheduledJob("review-tiers", "members", review_tier_anniversaries, _reviewed),
    ScheduledJob("referral-bonuses", "referrals", pay_referral_bonuses, _paid),
    ScheduledJob("birthday-bonuses", "members", pay_birthday_bonuses, _birthdays),
]
