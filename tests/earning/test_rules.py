"""Each kind of earn rule, the order they are evaluated in, and rounding once per purchase."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from services.earning import service as earning
from shared import clock
from shared.error_codes import UserErrorCode
from tests.earning.helpers import items, line, rule, total
from tests.factories import earn, enroll, make_partner, unique
from tests.sql_statements import sql_statements


async def test_a_partner_without_rules_earns_as_before_in_two_statements(db):
    cafe = await make_partner(db, earn_rate="1")
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "1.00")  # warms the caches
    async with sql_statements(db) as statements:
        outcome = await earn(db, cafe, member.member_number, "12.90")
    assert outcome.result["points"] == 12 and outcome.result["detail"] is None
    assert len(statements) == 2, statements  # the earn statement and the balance notification
    assert items(outcome) == [(None, 12)]


async def test_ten_lines_never_earn_less_than_their_total(db):
    cafe = await make_partner(db, earn_rate="1")
    member = await enroll(db, cafe)
    lines = tuple(line(f"sku-{i}", "1.29") for i in range(10))
    outcome = await earn(db, cafe, member.member_number, total(*lines), lines=lines)
    assert outcome.result["points"] == 12  # floor(12.90), not 10 x floor(1.29)
    # The lines' shares of the points sum to the purchase's points exactly.
    assert sum(ln["points"] for ln in outcome.result["detail"]["lines"]) == 12


async def test_half_up_rounds_once_for_the_purchase(db):
    shop = await make_partner(db, earn_rate="1", earn_rounding="HALF_UP")
    member = await enroll(db, shop)
    lines = (line("a", "0.30"), line("b", "0.30"))
    outcome = await earn(db, shop, member.member_number, "0.60", lines=lines)
    assert outcome.result["points"] == 1


async def test_sku_category_and_exclusion_rules(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    await rule(db, shop, "double coffee", category="coffee", multiplier="2")
    await rule(db, shop, "no gift cards", category="giftcard", multiplier="0")
    await rule(db, shop, "5 per croissant", sku="croissant", points_per_unit="5")
    lines = (
        line("espresso", "3.00", category="coffee"),
        line("card", "50.00", category="giftcard"),
        line("croissant", "1.20", category="bakery", quantity=3),
        line("water", "2.00", category="drinks"),
    )
    outcome = await earn(db, shop, member.member_number, total(*lines), lines=lines)
    # 3.00 x 2 + 0 + 3 x 5 + 2.00 x 1
    assert outcome.result["points"] == 6 + 0 + 15 + 2
    assert sorted(items(outcome), key=str) == sorted(
        [("double coffee", 6), ("no gift cards", 0), ("5 per croissant", 15), (None, 2)], key=str
    )
    by_sku = {ln["sku"]: ln["points"] for ln in outcome.result["detail"]["lines"]}
    assert by_sku == {"espresso": 6, "card": 0, "croissant": 15, "water": 2}


async def test_a_sku_rule_beats_its_category_rule(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    await rule(db, shop, "coffee x3", category="coffee", multiplier="3")
    await rule(db, shop, "decaf x1", sku="decaf", multiplier="1")
    lines = (line("decaf", "4.00", category="coffee"), line("latte", "4.00", category="coffee"))
    outcome = await earn(db, shop, member.member_number, "8.00", lines=lines)
    assert outcome.result["points"] == 4 + 12


async def test_minimum_spend_then_cap_per_purchase(db):
    shop = await make_partner(db, earn_rate="10")
    member = await enroll(db, shop)
    await rule(db, shop, "min 5", min_spend="5")
    await rule(db, shop, "cap 80", cap_per_purchase=80)
    small = await earn(db, shop, member.member_number, "4.99")
    assert small.result["points"] == 0
    assert items(small) == [(None, 49), ("min 5", -49)]
    big = await earn(db, shop, member.member_number, "20.00")
    assert big.result["points"] == 80
    assert items(big) == [(None, 200), ("cap 80", -120)]
    middle = await earn(db, shop, member.member_number, "6.05")
    assert middle.result["points"] == 60


async def test_amount_must_be_the_sum_of_the_lines(db):
    shop = await make_partner(db)
    member = await enroll(db, shop)
    try:
        await earn(db, shop, member.member_number, "10.00", lines=(line("a", "4.00"), line("b", "5.00")))
    except Exception as exc:  # DomainError: refused before anything is written
        errors = exc.errors
    assert [(e.code, e.field) for e in errors] == [(UserErrorCode.AMOUNT_MISMATCH, "amount")]


async def test_bad_lines_name_their_fields(db):
    shop = await make_partner(db)
    member = await enroll(db, shop)
    lines = (line("a", "4.00", quantity=0), line("a", "1.00"), line("", "1.00"))
    try:
        await earn(db, shop, member.member_number, "6.00", lines=lines)
    except Exception as exc:
        fields = {e.field for e in exc.errors}
    assert {"lines[0].quantity", "lines[1].sku", "lines[2].sku"} <= fields


async def test_unknown_promo_code_is_a_user_error_and_the_purchase_still_earns(db):
    shop = await make_partner(db)
    member = await enroll(db, shop)
    outcome = await earn(db, shop, member.member_number, "10.00", promo_codes=("SPRING",))
    assert outcome.result["points"] == 10
    assert [(e.code, e.field) for e in outcome.errors] == [
        (UserErrorCode.PROMO_CODE_INVALID, "promoCodes[0]")
    ]
    assert outcome.result["detail"]["promo_codes"] == [
        {"code": "SPRING", "status": "INVALID", "promotion": None}
    ]


async def test_rule_versions_apply_by_occurred_at(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    coffee = await rule(db, shop, "coffee x2", category="coffee", multiplier="2")
    before = clock.now() - timedelta(minutes=1)  # before the rule existed
    lines = (line("latte", "10.00", category="coffee"),)
    old = await earn(db, shop, member.member_number, "10.00", lines=lines, occurred_at=before)
    assert old.result["points"] == 10
    change_at = clock.now() + timedelta(seconds=2)
    updated = await earning.update_rule(
        db,
        shop.principal,
        rule_id=coffee.rule_id,
        changes={"multiplier": Decimal("5")},
        effective_from=change_at,
    )
    assert updated.multiplier == 5 and updated.name == "coffee x2"
    now_earn = await earn(db, shop, member.member_number, "10.00", lines=lines)
    assert now_earn.result["points"] == 20  # the version in force now
    later = change_at + timedelta(seconds=1)
    clock.set_clock(lambda: later)
    try:
        after = await earn(db, shop, member.member_number, "10.00", lines=lines)
        assert after.result["points"] == 50
        await earning.archive_rule(
            db, shop.principal, rule_id=coffee.rule_id, effective_from=later + timedelta(seconds=1)
        )
        clock.set_clock(lambda: later + timedelta(seconds=2))
        archived = await earn(db, shop, member.member_number, "10.00", lines=lines)
        assert archived.result["points"] == 10
    finally:
        clock.set_clock(None)


async def test_a_change_cannot_rewrite_the_past(db):
    shop = await make_partner(db)
    coffee = await rule(db, shop, "coffee", category="coffee", multiplier="2")
    try:
        await earning.update_rule(
            db,
            shop.principal,
            rule_id=coffee.rule_id,
            changes={},
            effective_from=clock.now() - timedelta(hours=1),
        )
    except Exception as exc:
        errors = exc.errors
    assert [(e.code, e.field) for e in errors] == [(UserErrorCode.IN_PAST, "effectiveFrom")]


async def test_rule_terms_are_checked_field_by_field(db):
    shop = await make_partner(db)
    cases = [
        ({"sku": "a", "category": "b", "multiplier": 1}, "category"),
        ({"sku": "a"}, "multiplier"),
        ({"sku": "a", "multiplier": 1, "points_per_unit": 1}, "pointsPerUnit"),
        ({"category": "c", "multiplier": 1, "cap_per_purchase": 5}, "capPerPurchase"),
        ({"multiplier": 2}, "multiplier"),
        ({}, "minSpend"),
        ({"cap_per_purchase": -1}, "capPerPurchase"),
        ({"sku": "a", "multiplier": -1}, "multiplier"),
    ]
    for terms, field in cases:
        try:
            await rule(db, shop, **terms)
        except Exception as exc:
            assert field in {e.field for e in exc.errors}, (terms, exc.errors)
        else:
            raise AssertionError(f"{terms} was accepted")


async def test_the_readme_cafe(db):
    cafe = await make_partner(db, earn_rate="1")
    member = await enroll(db, cafe)
    await rule(db, cafe, "Coffee double", category="coffee", multiplier="2")
    await rule(db, cafe, "No gift cards", category="giftcard", multiplier="0")
    await rule(db, cafe, "5 per croissant", sku="croissant", points_per_unit="5")
    await rule(db, cafe, "Max 200 a day", cap_per_member_day=200)
    lines = (
        line("latte", "7.00", category="coffee", quantity=2),
        line("gift-card", "20.00", category="giftcard"),
        line("croissant", "2.40", category="bakery", quantity=2),
    )
    outcome = await earn(db, cafe, member.member_number, "29.40", lines=lines)
    assert outcome.result["points"] == 24
    assert items(outcome) == [("Coffee double", 14), ("No gift cards", 0), ("5 per croissant", 10)]


async def test_a_partner_with_rules_still_earns_in_two_statements(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    for i in range(10):
        await rule(db, shop, f"sku {i}", sku=f"sku-{i}", multiplier="2")
    await rule(db, shop, "cap", cap_per_purchase=1000)
    lines = (line("sku-1", "3.00"), line("other", "2.00", category="x"))
    await earn(db, shop, member.member_number, "5.00", lines=lines)  # warms the caches
    async with sql_statements(db) as statements:
        outcome = await earn(db, shop, member.member_number, "5.00", lines=lines)
    assert outcome.result["points"] == 8
    assert len(statements) == 2, statements  # rules come from the process's cache, never the database


async def test_a_retry_replays_the_breakdown_and_other_lines_are_another_input(db):
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, shop)
    await rule(db, shop, "tea x2", category="tea", multiplier="2")
    lines = (line("green", "4.00", category="tea"), line("cake", "3.00"))
    key, order = unique("key"), unique("order")
    first = await earn(
        db, shop, member.member_number, "7.00", lines=lines, key=key, order_id=order, promo_codes=("X",)
    )
    retry = await earn(
        db, shop, member.member_number, "7.00", lines=lines, key=key, order_id=order, promo_codes=("X",)
    )
    assert retry.result == first.result and retry.result["points"] == 11
    assert [e.code for e in retry.errors] == [UserErrorCode.PROMO_CODE_INVALID]
    other = (line("green", "5.00", category="tea"), line("cake", "2.00"))
    reused = await earn(
        db, shop, member.member_number, "7.00", lines=other, key=key, order_id=order, promo_codes=("X",)
    )
    assert [e.code for e in reused.errors] == [UserErrorCode.IDEMPOTENCY_KEY_REUSED]
