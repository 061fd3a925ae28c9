"""Tiers: createTier's checks, the upgrade inside the earn (exactly once under concurrency), the
multiplier on base points (breakdown, refund, settlement), bulk earning, the downgrade job."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from services.engagement import tiers
from services.engagement.scheduled import review_tier_anniversaries
from services.gateway.worker import run_job
from services.settlement import service as settlement
from shared import clock
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from tests.engagement.tiers_helpers import held, make_tier, no_tiers, tier_events  # noqa: F401
from tests.factories import (
    ADMIN,
    balance,
    earn,
    earn_batch,
    enroll,
    make_partner,
    purchase,
    reverse,
    unique,
    violations,
)
from tests.settlement.test_settlement import SETTLER

pytestmark = pytest.mark.usefixtures("no_tiers")


async def test_create_tier_checks_its_input_with_field_names(db) -> None:
    await make_tier(db, "Silver", 1000, "1.5", ["lounge"])
    cases = [
        (tiers.TierTerms("silver", 2000, "2"), ("name", UserErrorCode.NAME_TAKEN)),
        (tiers.TierTerms("Gold", -1, "2"), ("qualifyingPoints", UserErrorCode.INVALID_AMOUNT)),
        (tiers.TierTerms("Gold", 2000, "0.9"), ("multiplier", UserErrorCode.INVALID_AMOUNT)),
        (tiers.TierTerms("Gold", 1000, "2"), ("qualifyingPoints", UserErrorCode.INVALID)),
        (tiers.TierTerms("", 2000, "2"), ("name", UserErrorCode.REQUIRED)),
    ]
    for terms, expected in cases:
        with pytest.raises(DomainError) as caught:
            await tiers.create_tier(db, ADMIN, terms)
        assert [(e.field, e.code) for e in caught.value.errors] == [expected], terms
    listed = await tiers.tiers(db)
    assert [(t.name, t.qualifying_points, t.multiplier) for t in listed.tiers] == [
        ("Silver", 1000, Decimal("1.5"))
    ]


async def test_upgrade_inside_the_earn_and_the_multiplier_after_it(db) -> None:
    await make_tier(db, "Base", 0)
    await make_tier(db, "Silver", 100, "2")
    cafe = await make_partner(db, earn_rate="1")
    member = await enroll(db, cafe)
    first = await earn(db, cafe, member.member_number, "60.00")
    assert first.result["points"] == 60 and await held(db, member.id) is None  # base: implicit
    second = await earn(db, cafe, member.member_number, "50.00")  # 110: Silver, from this earn on
    assert second.result["points"] == 50
    mine = await held(db, member.id)
    assert mine is not None and mine.qualifies_until == clock.add_months(mine.since, 12)
    assert await tier_events(db, member.id) == [
        {
            "memberNumber": member.member_number,
            "fromTier": "Base",
            "toTier": "Silver",
            "direction": "UP",
            "qualifyingPoints": 110,
        }
    ]
    third = await earn(db, cafe, member.member_number, "10.00")
    assert third.result["points"] == 20  # 10 base + 10 Silver
    items = third.result["detail"]["items"]
    assert [(i.get("tier") or {}).get("name") for i in items] == [None, "Silver"]
    assert [i["points"] for i in items] == [10, 10]
    assert await violations(db) == []


async def test_concurrent_earns_crossing_a_threshold_upgrade_exactly_once(db) -> None:
    await make_tier(db, "Silver", 100, "1.5")
    cafe = await make_partner(db, earn_rate="1")
    member = await enroll(db, cafe)
    outcomes = await asyncio.gather(*(earn(db, cafe, member.member_number, "10.00") for _ in range(20)))
    assert all(o.errors == [] for o in outcomes)
    events = await tier_events(db, member.id)
    assert len(events) == 1 and events[0]["toTier"] == "Silver" and events[0]["fromTier"] is None
    points = sorted(o.result["points"] for o in outcomes)
    # The ten earns up to 100 earn 10; every later one 15 (serialized on the wallet lock).
    assert points.count(10) == 10 and points.count(15) == 10
    assert (await balance(db, member.id)).available == sum(points)


async def test_multiplier_taken_back_by_refunds_and_settled_as_the_partners_issuance(db) -> None:
    t0 = clock.now().replace(microsecond=0) - timedelta(days=6000)
    await make_tier(db, "Gold", 50, "3")
    shop = await make_partner(db, earn_rate="1", issue_fee_per_point=Decimal("0.001"))
    member = await enroll(db, shop)
    try:
        clock.set_clock(lambda: t0 + timedelta(hours=1))
        assert (await earn(db, shop, member.member_number, "50.00")).result["points"] == 50  # now Gold
        order = unique("order")
        clock.set_clock(lambda: t0 + timedelta(hours=2))
        gold = await earn(db, shop, member.member_number, "20.00", order_id=order)
        assert gold.result["points"] == 60
        half = await reverse(db, shop, order, amount="10.00")
        assert half.result["points"] == 30
        clock.set_clock(lambda: t0 + timedelta(days=11))
        run = await settlement.run_settlement(
            db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=10)
        )
        rest = await reverse(db, shop, order)  # the rest of the refund: everything the purchase earned
        assert rest.result["points"] == 30
        assert (await balance(db, member.id)).available == 50
    finally:
        clock.set_clock(None)
    lines = {x.kind: (x.points, x.amount) for x in {s.partner_id: s for s in run.statements}[shop.id].lines}
    # 50 + 60 - 30 issued by the shop (the tier's 40 included), its fee owed to the coalition.
    assert lines["ISSUE_FEE"] == (80, Decimal("-0.08"))
    assert await violations(db) == []


async def test_bulk_earning_applies_the_multiplier_and_upgrades_set_wise(db) -> None:
    await make_tier(db, "Silver", 100, "2")
    cafe = await make_partner(db, earn_rate="1")
    a, b = await enroll(db, cafe), await enroll(db, cafe)
    assert (await earn(db, cafe, a.member_number, "100.00")).errors == []  # a: Silver
    outcomes = await earn_batch(
        db, cafe, [purchase(a.member_number, "10.00"), purchase(b.member_number, "120.00")]
    )
    assert [o.result["points"] for o in outcomes] == [20, 120]
    assert [i.get("tier") for i in outcomes[0].result["detail"]["items"]][1]["name"] == "Silver"
    assert (await held(db, b.id)) is not None  # b crossed 100 in the batch: Silver at once
    assert len(await tier_events(db, b.id)) == 1
    assert await violations(db) == []


async def test_downgrade_only_after_the_anniversary_and_grace_to_what_points_reach(db) -> None:
    await make_tier(db, "Silver", 100, "1")
    await make_tier(db, "Gold", 300, "1")
    cafe = await make_partner(db, earn_rate="1")
    member = await enroll(db, cafe)
    start = clock.now()
    try:
        assert (await earn(db, cafe, member.member_number, "300.00")).errors == []  # Gold
        anniversary = (await held(db, member.id)).qualifies_until
        # Eleven months on, 150 more points: still Gold at the anniversary (it is kept until then).
        clock.set_clock(lambda: clock.add_months(start, 11))
        assert (await earn(db, cafe, member.member_number, "150.00")).errors == []
        clock.set_clock(lambda: anniversary + timedelta(days=29))  # inside the grace: nothing yet
        await run_job(db, review_tier_anniversaries)
        assert (await held(db, member.id)).tier_id == (await tiers.tiers(db)).tiers[1].id
        assert [e["direction"] for e in await tier_events(db, member.id)] == ["UP"]
        clock.set_clock(lambda: anniversary + timedelta(days=31))  # the 300 left the window; 150 remain
        await run_job(db, review_tier_anniversaries)
        now_held = await held(db, member.id)
        assert now_held.tier_id == (await tiers.tiers(db)).tiers[0].id  # Silver, not below
        events = await tier_events(db, member.id)
        assert events[-1] == {
            "memberNumber": member.member_number,
            "fromTier": "Gold",
            "toTier": "Silver",
            "direction": "DOWN",
            "qualifyingPoints": 150,
        }
        await run_job(db, review_tier_anniversaries)  # not due again until the new anniversary
        assert len(await tier_events(db, member.id)) == 2
    finally:
        clock.set_clock(None)


async def test_the_csv_import_applies_the_multiplier_and_upgrades(db, database_url, tmp_path) -> None:
    from tests.e2e.conftest import run_cli
    from tests.test_import_purchases import write_file

    await make_tier(db, "Silver", 100, "2")
    cafe = await make_partner(db, earn_rate="1")
    silver, newcomer = await enroll(db, cafe), await enroll(db, cafe)
    assert (await earn(db, cafe, silver.member_number, "100.00")).errors == []
    prefix = unique("sale")
    path = tmp_path / "tiers.csv"
    write_file(
        path,
        [
            [silver.member_number, f"{prefix}-1", "10.00", "EUR", "", ""],  # 10 x 2
            [newcomer.member_number, f"{prefix}-2", "150.00", "EUR", "", ""],  # crosses 100: Silver
        ],
    )
    done = run_cli(database_url, "import", "purchases", "--partner", str(cafe.id), str(path))
    assert done.returncode == 0, done.stderr
    assert (await balance(db, silver.id)).pending + (await balance(db, silver.id)).available == 120
    assert (await held(db, newcomer.id)) is not None
    assert [e["toTier"] for e in await tier_events(db, newcomer.id)] == ["Silver"]
