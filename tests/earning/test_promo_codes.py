"""Promo codes: their format (alphabet, check character), generation, and their use on purchases
(single and multi-use, per member, expired, used up, another partner's), exact under concurrency,
given back by a full refund (not by a partial one), and replays that use nothing again."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from services.earning import promo_code_batches
from services.earning import promo_code_format as fmt
from services.earning import service as earning
from services.earning.refunds import RefundLine
from shared import clock
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Forbidden
from shared.money import Money
from shared.sql import connection
from tests.earning.helpers import line
from tests.earning.promo_helpers import BONUS, codes, promotion, uses
from tests.factories import earn, enroll, make_partner, reverse, unique


def statuses(outcome) -> list[str]:
    return [c["status"] for c in outcome.result["detail"]["promo_codes"]]


def error_codes(outcome) -> list[tuple[UserErrorCode, str]]:
    return [(e.code, e.field) for e in outcome.errors]


# --- format -------------------------------------------------------------------------------------


def test_the_alphabet_has_no_ambiguous_characters_and_a_prime_size():
    assert not set("0O1ILUV") & set(fmt.ALPHABET)
    assert len(set(fmt.ALPHABET)) == len(fmt.ALPHABET) == 29


def test_the_check_character_catches_every_substitution_and_adjacent_transposition():
    for sample in [fmt.new_code("SMR") for _ in range(40)] + [fmt.new_code("") for _ in range(40)]:
        assert fmt.is_well_formed(sample)
        for i, original in enumerate(sample):
            for other in fmt.ALPHABET:
                if other != original:
                    typo = sample[:i] + other + sample[i + 1 :]
                    assert not fmt.is_well_formed(typo), (sample, typo)
        for i in range(len(sample) - 1):
            if sample[i] != sample[i + 1]:
                swapped = sample[:i] + sample[i + 1] + sample[i] + sample[i + 2 :]
                assert not fmt.is_well_formed(swapped), (sample, swapped)


def test_the_worst_case_transposition_of_the_alphabets_ends_is_caught():
    # Luhn mod N misses the swap of its first and last characters ("2Z" <-> "Z2"); this check does not.
    payload = "2Z" + "2" * 8
    code = payload + fmt.check_character(payload)
    assert fmt.is_well_formed(code) and not fmt.is_well_formed("Z2" + code[2:])


def test_normalising_accepts_what_people_type():
    code = fmt.new_code("AB")
    typed = f" {code[:4].lower()}-{code[4:9]} {code[9:]} "
    assert fmt.normalise(typed) == code


# --- generation ---------------------------------------------------------------------------------


async def test_a_batch_is_unique_codes_of_the_alphabet_with_its_prefix(db):
    shop = await make_partner(db)
    promo = await promotion(db, shop)
    made = await codes(db, shop, promo, 500, prefix="smr-x")
    assert len(made) == len(set(made)) == 500
    assert all(c.startswith("SMRX") and fmt.is_well_formed(c) and set(c) <= set(fmt.ALPHABET) for c in made)
    async with connection(db) as conn:
        stored = await conn.fetchval(
            "SELECT count(*) FROM promo_codes c JOIN promo_code_batches b ON b.id = c.batch_id"
            " WHERE b.promotion_id = $1",
            promo,
        )
    assert stored == 500


async def test_a_big_batch_returns_no_codes_in_the_answer(db):
    shop = await make_partner(db)
    promo = await promotion(db, shop)
    made = await promo_code_batches.generate(
        db, shop.principal, promo_code_batches.BatchTerms(promotion_id=promo, count=20_000)
    )
    assert made.codes is None and made.batch.count == 20_000
    listed = await promo_code_batches.batches(db, shop.principal, promo)
    assert [b.id for b in listed] == [made.batch.id]


async def test_bad_terms_are_user_errors_naming_their_field(db):
    shop = await make_partner(db)
    promo = await promotion(db, shop)
    terms = promo_code_batches.BatchTerms(
        promotion_id=promo,
        count=0,
        prefix="SUMMER",  # U is not in the alphabet
        uses_per_code=0,
        uses_per_member=0,
        expires_at=clock.now() - timedelta(minutes=1),
    )
    with pytest.raises(DomainError) as caught:
        await promo_code_batches.generate(db, shop.principal, terms)
    assert sorted(e.field for e in caught.value.errors) == [
        "count",
        "expiresAt",
        "prefix",
        "usesPerCode",
        "usesPerMember",
    ]


async def test_codes_for_another_partners_promotion_are_forbidden_and_unknown_ones_not_found(db):
    mine, theirs = await make_partner(db), await make_partner(db)
    their_promo = await promotion(db, theirs)
    coalition_promo = await promotion(db, None)
    for promo in (their_promo, coalition_promo):
        with pytest.raises(Forbidden):
            await codes(db, mine, promo)
    with pytest.raises(DomainError) as caught:
        await codes(db, mine, 10**12)
    assert caught.value.errors[0].code is UserErrorCode.PROMOTION_NOT_FOUND


async def test_an_ended_promotion_gets_no_codes(db):
    shop = await make_partner(db)
    promo = await promotion(db, shop, ends_at=clock.now() - timedelta(hours=1))
    with pytest.raises(DomainError) as caught:
        await codes(db, shop, promo)
    assert [(e.code, e.field) for e in caught.value.errors] == [(UserErrorCode.INVALID, "promotionId")]


# --- use on a purchase ---------------------------------------------------------------------------


async def test_a_single_use_code_unlocks_once_and_then_is_used(db):
    shop = await make_partner(db)
    promo = await promotion(db, shop)
    [code] = await codes(db, shop, promo)
    first, second = await enroll(db, shop), await enroll(db, shop)
    used = await earn(db, shop, first.member_number, "12.90", promo_codes=(code.lower(),))
    assert used.result["points"] == 12 + BONUS and used.errors == []
    assert used.result["detail"]["promo_codes"] == [
        {"code": code.lower(), "status": "UNLOCKED", "promotion": promo}
    ]
    again = await earn(db, shop, second.member_number, "5.00", promo_codes=(code,))
    assert again.result["points"] == 5  # the purchase still earns its base points
    assert error_codes(again) == [(UserErrorCode.PROMO_CODE_USED, "promoCodes[0]")]
    assert await uses(db, code) == 1


async def test_a_multi_use_code_and_its_limit_per_member(db):
    shop = await make_partner(db)
    promo = await promotion(db, shop)
    [code] = await codes(db, shop, promo, uses_per_code=3, uses_per_member=2)
    ann, bob = await enroll(db, shop), await enroll(db, shop)
    answers = [await earn(db, shop, ann.member_number, "1", promo_codes=(code,)) for _ in range(3)]
    assert [statuses(a) for a in answers] == [["UNLOCKED"], ["UNLOCKED"], ["USED"]]
    assert error_codes(answers[2]) == [(UserErrorCode.PROMO_CODE_USED, "promoCodes[0]")]
    assert statuses(await earn(db, shop, bob.member_number, "1", promo_codes=(code,))) == ["UNLOCKED"]
    assert statuses(await earn(db, shop, bob.member_number, "1", promo_codes=(code,))) == ["USED"]  # 3 of 3
    assert await uses(db, code) == 3


async def test_uses_per_member_counts_every_code_of_the_batch(db):
    shop = await make_partner(db)
    promo = await promotion(db, shop)
    one, two = await codes(db, shop, promo, 2, uses_per_member=1)
    ann = await enroll(db, shop)
    answer = await earn(db, shop, ann.member_number, "1", promo_codes=(one, two))
    assert statuses(answer) == ["UNLOCKED", "USED"]
    assert await uses(db, two) == 0


async def test_invalid_codes_typos_unknown_other_partners_and_duplicates(db):
    shop, other = await make_partner(db), await make_partner(db)
    [mine] = await codes(db, shop, await promotion(db, shop), uses_per_code=5)
    [theirs] = await codes(db, other, await promotion(db, other))
    [everyone] = await codes(db, None, await promotion(db, None))  # a coalition promotion's code
    typo = mine[:3] + ("A" if mine[3] != "A" else "B") + mine[4:]
    unknown = fmt.new_code("")
    member = await enroll(db, shop)
    answer = await earn(
        db,
        shop,
        member.member_number,
        "7",
        promo_codes=(typo, unknown, theirs, "x", mine, mine, everyone, "O0O"),
    )
    assert answer.result["points"] == 7 + BONUS  # one non-stackable promotion applies, not two
    assert statuses(answer) == [
        "INVALID",
        "INVALID",
        "INVALID",
        "INVALID",
        "UNLOCKED",
        "USED",
        "UNLOCKED",
        "INVALID",
    ]
    assert [c for c, _ in error_codes(answer)] == [UserErrorCode.PROMO_CODE_INVALID] * 4 + [
        UserErrorCode.PROMO_CODE_USED,
        UserErrorCode.PROMO_CODE_INVALID,
    ]
    assert await uses(db, theirs) == 0 and await uses(db, mine) == 1


async def test_an_expired_code_and_a_late_recorded_purchase_made_before_expiry(db):
    shop = await make_partner(db)
    promo = await promotion(db, shop)
    start = clock.now() - timedelta(hours=3)
    clock.set_clock(lambda: start)
    try:
        [code] = await codes(db, shop, promo, uses_per_code=2, expires_at=start + timedelta(hours=1))
    finally:
        clock.set_clock(None)
    member = await enroll(db, shop)
    late = await earn(db, shop, member.member_number, "3", promo_codes=(code,))
    assert statuses(late) == ["EXPIRED"]
    assert error_codes(late) == [(UserErrorCode.PROMO_CODE_EXPIRED, "promoCodes[0]")]
    at_the_till = await earn(
        db, shop, member.member_number, "3", promo_codes=(code,), occurred_at=start + timedelta(minutes=30)
    )
    assert statuses(at_the_till) == ["UNLOCKED"]


async def test_a_replay_gives_the_same_user_errors_and_uses_nothing_again(db):
    shop = await make_partner(db)
    promo = await promotion(db, shop)
    [code] = await codes(db, shop, promo, uses_per_code=2)
    member = await enroll(db, shop)
    key, order = unique("key"), unique("order")
    bad = fmt.new_code("")
    first = await earn(db, shop, member.member_number, "4", key=key, order_id=order, promo_codes=(code, bad))
    replay = await earn(db, shop, member.member_number, "4", key=key, order_id=order, promo_codes=(code, bad))
    assert replay.result == first.result and replay.errors == first.errors
    assert error_codes(first) == [(UserErrorCode.PROMO_CODE_INVALID, "promoCodes[1]")]
    assert await uses(db, code) == 1


async def test_a_duplicate_order_uses_no_code(db):
    shop = await make_partner(db)
    [code] = await codes(db, shop, await promotion(db, shop), uses_per_code=5)
    member = await enroll(db, shop)
    order = unique("order")
    await earn(db, shop, member.member_number, "4", order_id=order, promo_codes=(code,))
    dup = await earn(db, shop, member.member_number, "4", order_id=order, promo_codes=(code,))
    assert dup.result is None and [e.code for e in dup.errors] == [UserErrorCode.DUPLICATE_ORDER]
    assert await uses(db, code) == 1


# --- concurrency ---------------------------------------------------------------------------------


async def test_fifty_concurrent_purchases_use_a_ten_use_code_exactly_ten_times(db):
    shop = await make_partner(db)
    promo = await promotion(db, shop)
    [code] = await codes(db, shop, promo, uses_per_code=10)
    people = [await enroll(db, shop) for _ in range(50)]
    answers = await asyncio.gather(
        *(earn(db, shop, p.member_number, "2", promo_codes=(code,)) for p in people)
    )
    assert sorted(a.result["points"] for a in answers if a.result is not None) == [2] * 40 + [2 + BONUS] * 10
    assert sum(statuses(a) == ["UNLOCKED"] for a in answers) == 10
    assert sum(statuses(a) == ["USED"] for a in answers) == 40
    assert await uses(db, code) == 10
    async with connection(db) as conn:
        rows = await conn.fetchval(
            "SELECT count(*) FROM promo_code_uses u JOIN promo_codes c ON c.id = u.code_id WHERE c.code = $1",
            code,
        )
    assert rows == 10


async def test_one_member_racing_themself_gets_exactly_uses_per_member(db):
    shop = await make_partner(db)
    [code] = await codes(db, shop, await promotion(db, shop), uses_per_code=100, uses_per_member=3)
    member = await enroll(db, shop)
    await earn(db, shop, member.member_number, "1")  # opens the wallet
    answers = await asyncio.gather(
        *(earn(db, shop, member.member_number, "1", promo_codes=(code,)) for _ in range(20))
    )
    assert sum(statuses(a) == ["UNLOCKED"] for a in answers) == 3
    assert await uses(db, code) == 3


# --- release on refund ---------------------------------------------------------------------------


async def test_a_full_refund_gives_the_code_back_and_a_partial_one_does_not(db):
    shop = await make_partner(db)
    promo = await promotion(db, shop)
    [code] = await codes(db, shop, promo)
    ann, bob = await enroll(db, shop), await enroll(db, shop)
    order = unique("order")
    await earn(db, shop, ann.member_number, "10.00", order_id=order, promo_codes=(code,))
    partial = await reverse(db, shop, order, "4.00")
    assert partial.result is not None and await uses(db, code) == 1
    assert statuses(await earn(db, shop, bob.member_number, "1", promo_codes=(code,))) == ["USED"]
    rest = await reverse(db, shop, order)  # the rest: now fully refunded
    assert rest.result is not None and await uses(db, code) == 0
    async with connection(db) as conn:
        released = await conn.fetchval(
            "SELECT released_at IS NOT NULL FROM promo_code_uses WHERE partner_id = $1 AND order_id = $2",
            shop.id,
            order,
        )
    assert released
    assert statuses(await earn(db, shop, bob.member_number, "1", promo_codes=(code,))) == ["UNLOCKED"]


async def test_refunding_every_line_releases_the_code(db):
    shop = await make_partner(db)
    [code] = await codes(db, shop, await promotion(db, shop))
    member = await enroll(db, shop)
    order = unique("order")
    lines = (line("a", "3.00"), line("b", "2.00", quantity=2))
    await earn(db, shop, member.member_number, "5.00", order_id=order, lines=lines, promo_codes=(code,))
    await reverse(db, shop, order, lines=(RefundLine("a", 1),))
    assert await uses(db, code) == 1
    await reverse(db, shop, order, lines=(RefundLine("b", 2),))
    assert await uses(db, code) == 0


async def test_record_purchases_uses_codes_as_record_purchase_does(db):
    shop = await make_partner(db)
    [code] = await codes(db, shop, await promotion(db, shop), uses_per_code=2)
    people = [await enroll(db, shop) for _ in range(3)]
    batch = [
        earning.PurchaseInput(
            idempotency_key=unique("key"),
            member_number=p.member_number,
            order_id=unique("order"),
            amount=Money(Decimal("3"), "EUR"),
            promo_codes=(code,),
        )
        for p in people
    ]
    outcomes = await earning.record_purchases(db, shop.principal, batch)
    assert sorted(o.result["points"] for o in outcomes) == [3, 3 + BONUS, 3 + BONUS]
    assert sorted(statuses(o)[0] for o in outcomes) == ["UNLOCKED", "UNLOCKED", "USED"]
    assert sorted(c for o in outcomes for c, _ in error_codes(o)) == [UserErrorCode.PROMO_CODE_USED]
    assert await uses(db, code) == 2
