"""The birthday bonus: paid by the worker once a year per BIRTHDAY activity, on the member's
birthday (or within the grace days after it), to the owner's members only, whoever runs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest

from services.engagement import activities, birthdays
from services.engagement.activity_models import ActivityKind
from services.engagement.scheduled import pay_birthday_bonuses
from services.gateway.worker import run_job
from shared import clock, sql
from shared.database import Database
from tests.engagement.activity_helpers import codes, make_activity, record, records_of
from tests.factories import ADMIN, SeededPartner, balance, enroll, make_partner, violations


def born(days_ago: int) -> date:
    """A birth date whose birthday is `days_ago` days before today (UTC; negative: after it), 28
    years back (a leap year when the day is a 29 February)."""
    day = clock.now().date() - timedelta(days=days_ago)
    return day.replace(year=day.year - 28)


async def set_birth_date(db: Database, member_id: int, value: date | None) -> None:
    async with sql.connection(db) as conn:
        await conn.execute("UPDATE members SET birth_date = $2 WHERE id = $1", member_id, value)


@pytest.fixture
async def birthday_activities(db) -> AsyncIterator[list[activities.Activity]]:
    """The test's BIRTHDAY activities, archived after it: an owner has one live at a time, and a
    live coalition one would pay every other test's members who have a birth date."""
    made: list[activities.Activity] = []
    yield made
    for activity in made:
        await activities.archive_activity(db, ADMIN, activity.id)


async def _birthday(db, owner: SeededPartner | None, made: list, points: int) -> activities.Activity:
    activity = await make_activity(db, owner, kind=ActivityKind.BIRTHDAY, points=points)
    made.append(activity)
    return activity


async def test_paid_once_a_year_to_the_owners_members(db, birthday_activities) -> None:
    shop, other = await make_partner(db), await make_partner(db)
    today, three_days, too_late, not_yet = [await enroll(db, shop) for _ in range(4)]
    elsewhere = await enroll(db, other)  # not the shop's: only the coalition's bonus reaches them
    for member, days_ago in ((today, 0), (three_days, 3), (too_late, 8), (not_yet, -1), (elsewhere, 0)):
        await set_birth_date(db, member.id, born(days_ago))
    shop_bonus = await _birthday(db, shop, birthday_activities, 200)
    coalition_bonus = await _birthday(db, None, birthday_activities, 25)

    done = await birthdays.pay_birthday_bonuses(db, clock.now(), 100)
    assert done.paid >= 5  # other tests' members may have birthdays too; ours are checked below

    assert (await balance(db, today.id)).available == 225
    assert (await balance(db, three_days.id)).available == 225  # within the grace days
    assert (await balance(db, too_late.id)).available == 0
    assert (await balance(db, not_yet.id)).available == 0
    assert (await balance(db, elsewhere.id)).available == 25
    [first, second] = await records_of(db, today.id)
    assert {first["activity_id"], second["activity_id"]} == {shop_bonus.id, coalition_bonus.id}
    assert first["birthday_year"] == clock.now().year

    await birthdays.pay_birthday_bonuses(db, clock.now() + timedelta(hours=1), 100)  # again
    assert (await balance(db, today.id)).available == 225
    assert len(await records_of(db, today.id)) == 2 and len(await records_of(db, three_days.id)) == 2
    # A BIRTHDAY activity is the worker's: recordActivity refuses it.
    assert codes(await record(db, shop, today.member_number, shop_bonus)) == ["INVALID"]
    assert await violations(db) == []


async def test_two_workers_pay_a_birthday_once(db, birthday_activities) -> None:
    shop = await make_partner(db)
    members = [await enroll(db, shop) for _ in range(10)]
    for m in members:
        await set_birth_date(db, m.id, born(1))
    await _birthday(db, shop, birthday_activities, 40)

    await asyncio.gather(*(run_job(db, pay_birthday_bonuses) for _ in range(3)))
    await run_job(db, pay_birthday_bonuses)  # one more, after whichever round skipped

    for m in members:
        assert (await balance(db, m.id)).available == 40
        assert len(await records_of(db, m.id)) == 1


async def test_an_erased_or_undated_member_gets_nothing(db, birthday_activities) -> None:
    shop = await make_partner(db)
    undated, erased = await enroll(db, shop), await enroll(db, shop)
    await set_birth_date(db, erased.id, born(0))
    async with sql.connection(db) as conn:
        await conn.execute("UPDATE members SET erased_at = now() WHERE id = $1", erased.id)
    await _birthday(db, shop, birthday_activities, 40)

    await birthdays.pay_birthday_bonuses(db, clock.now(), 100)

    assert await records_of(db, undated.id) == [] and await records_of(db, erased.id) == []


def test_the_days_a_round_pays_for() -> None:
    keys = birthdays.birthday_keys(date(2027, 3, 2))  # 2027 has no 29 February
    assert keys[0] == (302, 2027) and (224, 2027) in keys and (223, 2027) not in keys
    assert (229, 2027) in keys  # kept on 28 February
    leap = birthdays.birthday_keys(date(2028, 3, 1))  # 2028 has its own 29 February, once
    assert (229, 2028) in leap and len(leap) == birthdays.GRACE_DAYS
    across = birthdays.birthday_keys(date(2027, 1, 2))
    assert (1231, 2026) in across and (102, 2027) in across
    assert len(birthdays.birthday_keys(date(2027, 6, 15))) == birthdays.GRACE_DAYS
