"""Retries with the same idempotency key move nothing; a reused key with new input is refused."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.factories import balance, earn, enroll, make_partner, redeem, unique, violations


async def test_same_key_same_input_returns_the_first_result(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    key, order = unique("key"), unique("order")
    first = await earn(db, cafe, member.member_number, "10", key=key, order_id=order)
    again = await earn(db, cafe, member.member_number, "10", key=key, order_id=order)
    assert again.result == first.result
    assert (await balance(db, member.id)).available == 10


async def test_same_key_different_input_is_refused(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    key = unique("key")
    await earn(db, cafe, member.member_number, "10", key=key)
    other = await earn(db, cafe, member.member_number, "11", key=key)
    assert [(e.code, e.field) for e in other.errors] == [("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")]
    assert (await balance(db, member.id)).available == 10


async def test_keys_are_scoped_to_the_calling_client(db):
    cafe = await make_partner(db)
    bookshop = await make_partner(db)
    member = await enroll(db, cafe)
    key = unique("key")
    assert (await earn(db, cafe, member.member_number, "10", key=key)).errors == []
    assert (await earn(db, bookshop, member.member_number, "10", key=key)).errors == []
    assert (await balance(db, member.id)).available == 20


async def test_a_refused_redemption_stays_refused_on_retry(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    key, order = unique("key"), unique("order")
    refused = await redeem(db, cafe, member.member_number, 10, key=key, order_id=order)
    assert [e.code for e in refused.errors] == ["INSUFFICIENT_POINTS"]
    await earn(db, cafe, member.member_number, "50")
    retried = await redeem(db, cafe, member.member_number, 10, key=key, order_id=order)
    assert [e.code for e in retried.errors] == ["INSUFFICIENT_POINTS"]
    assert (await balance(db, member.id)).available == 50


async def test_fifty_concurrent_retries_of_one_purchase_make_one_lot(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    key, order = unique("key"), unique("order")
    outcomes = await asyncio.gather(
        *[earn(db, cafe, member.member_number, "25", key=key, order_id=order) for _ in range(50)]
    )
    assert all(o.errors == [] for o in outcomes)
    assert len({o.result["transaction_id"] for o in outcomes}) == 1
    async with db.sessions() as session:
        lots = await session.scalar(text("SELECT count(*) FROM lots WHERE member_id = :m"), {"m": member.id})
    assert lots == 1
    assert (await balance(db, member.id)).available == 25
    assert await violations(db) == []


async def test_two_hundred_concurrent_redemptions_never_overdraw(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "100")
    outcomes = await asyncio.gather(*[redeem(db, cafe, member.member_number, 1) for _ in range(200)])
    succeeded = [o for o in outcomes if not o.errors]
    refused = [o for o in outcomes if o.errors]
    assert len(succeeded) == 100
    assert {e.code for o in refused for e in o.errors} == {"INSUFFICIENT_POINTS"}
    assert (await balance(db, member.id)).available == 0
    assert await violations(db) == []
