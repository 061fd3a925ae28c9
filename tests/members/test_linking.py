"""Links between members and partners, and member numbers that tell a stranger nothing.

A partner that is not linked to a member gets, for every operation that reads or spends, exactly
the bytes an unknown number gets; spending needs a link; a link is made by enrolment or by an earn
that gives points; MEMBER_NOT_FOUND answers are rate-limited per client, across processes.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from services.earning import service as earning
from services.members import service as members
from services.partners import catalog
from shared import clock
from shared.database import Database
from shared.ids import new_member_number, to_global_id
from shared.money import Money
from shared.rate_limit import RateLimited
from shared.settings import get_settings
from tests.factories import balance, earn, enroll, link, make_partner, redeem, unique
from tests.gateway import queries as q

AUTHORIZE = """mutation($input: AuthorizeRedemptionInput!) { authorizeRedemption(input: $input) {
  authorization { id points } userErrors { code field message } } }"""
REDEEM_REWARD = """mutation($input: RedeemRewardInput!) { redeemReward(input: $input) {
  redemption { id points voucherCode } userErrors { code field message } } }"""


def _stranger_number(taken: str) -> str:
    while (number := new_member_number()) == taken:
        pass
    return number


async def test_unknown_and_unlinked_numbers_get_byte_identical_answers(gateway, db, partner_pair):
    cafe, _, shop, shop_token = partner_pair
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "500")  # rich enough for anything the shop asks
    reward = await catalog.create_reward(db, shop.principal, name=unique("Mug"), points_cost=10)
    unknown = _stranger_number(member.member_number)

    async def answers(number: str) -> list[bytes]:
        bodies = []
        for document, variables in [
            (q.MEMBER, {"n": number}),
            (
                q.REDEEM,
                {
                    "input": {
                        "idempotencyKey": unique("k"),
                        "memberNumber": number,
                        "points": 10,
                        "orderId": "o",
                    }
                },
            ),
            (
                AUTHORIZE,
                {
                    "input": {
                        "idempotencyKey": unique("k"),
                        "memberNumber": number,
                        "points": 10,
                        "orderId": "o",
                        "expiresIn": "PT10M",
                    }
                },
            ),
            (
                REDEEM_REWARD,
                {
                    "input": {
                        "idempotencyKey": unique("k"),
                        "memberNumber": number,
                        "rewardId": to_global_id("Reward", reward.id),
                    }
                },
            ),
        ]:
            response = await gateway.post(shop_token, document, variables)
            assert response.status_code == 200
            bodies.append(response.content)
        return bodies

    for_member = await answers(member.member_number)
    for_unknown = await answers(unknown)
    assert for_member == for_unknown
    assert b'"member":null' in for_member[0]
    for body in for_member[1:]:
        assert b'"MEMBER_NOT_FOUND"' in body and b"500" not in body  # no balance leaks out
    assert (await balance(db, member.id)).available == 500  # nothing was spent


async def test_spending_needs_a_link_and_enrolment_makes_one(db):
    cafe = await make_partner(db)
    airline = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "100")
    refused = await redeem(db, airline, member.member_number, 10)
    assert [e.code for e in refused.errors] == ["MEMBER_NOT_FOUND"]
    too_much = await redeem(db, airline, member.member_number, 1_000)
    assert too_much.errors == refused.errors  # not INSUFFICIENT_POINTS with the balance in it
    await link(db, airline, member)
    assert (await redeem(db, airline, member.member_number, 10)).errors == []
    short = await redeem(db, airline, member.member_number, 1_000)
    assert [e.code for e in short.errors] == ["INSUFFICIENT_POINTS"]
    assert "90 points available" in short.errors[0].message  # a linked partner may know it


async def test_a_zero_point_earn_does_not_link_a_point_earning_one_does(db):
    cafe = await make_partner(db)
    shop = await make_partner(db, earn_rate="1")
    member = await enroll(db, cafe)
    tiny = await earn(db, shop, member.member_number, "0.01")
    assert tiny.errors == [] and tiny.result["points"] == 0
    assert await members.find_member(db, shop.principal, member.member_number) is None
    assert [e.code for e in (await redeem(db, shop, member.member_number, 1)).errors] == ["MEMBER_NOT_FOUND"]
    real = await earn(db, shop, member.member_number, "5.00")
    assert real.result["points"] == 5
    found = await members.find_member(db, shop.principal, member.member_number)
    assert found is not None and found.id == member.id


@pytest.fixture
def tight_limit(monkeypatch):
    monkeypatch.setenv("MEMBER_MISS_LIMIT", "5")
    monkeypatch.setenv("MEMBER_MISS_WINDOW_SECONDS", "60")
    get_settings.cache_clear()
    yield 5
    monkeypatch.delenv("MEMBER_MISS_LIMIT")
    monkeypatch.delenv("MEMBER_MISS_WINDOW_SECONDS")
    get_settings.cache_clear()


async def test_member_not_found_answers_are_rate_limited_per_client_in_every_process(
    db, database_url, tight_limit
):
    shop = await make_partner(db)
    neighbour = await make_partner(db)
    known = await enroll(db, shop)
    await earn(db, shop, known.member_number, "10")
    other_process = Database(database_url, pool_size=2)  # its own per-process state, same database
    try:
        for _ in range(tight_limit):  # misses, spread over the operations that count them
            assert await members.find_member(db, shop.principal, new_member_number()) is None
        # The limit is reached: this process refuses at once, for known and unknown numbers alike.
        with pytest.raises(RateLimited) as caught:
            await members.find_member(db, shop.principal, known.member_number)
        assert 1 <= caught.value.retry_after <= 60
        with pytest.raises(RateLimited):
            await earn(db, shop, known.member_number, "1")
        with pytest.raises(RateLimited):
            await redeem(db, shop, new_member_number(), 1)
        # Another gateway process learns of it from PostgreSQL, not from this process's memory.
        with pytest.raises(RateLimited):
            await earning.record_purchase(
                other_process,
                shop.principal,
                earning.PurchaseInput(
                    idempotency_key=unique("k"),
                    member_number=known.member_number,
                    order_id=unique("o"),
                    amount=Money(Decimal(1), "EUR"),
                ),
            )
        # Another client is not affected.
        assert await members.find_member(db, neighbour.principal, known.member_number) is None
        assert (await earn(db, neighbour, known.member_number, "3")).errors == []
        # Once the window has slid past the misses, the client is served again.
        later = clock.now() + timedelta(seconds=61)
        clock.set_clock(lambda: later)
        try:
            db.cache.forget(("rate-limit", "member-lookup-miss"))
            found = await members.find_member(db, shop.principal, known.member_number)
            assert found is not None and found.id == known.id
        finally:
            clock.set_clock(None)
    finally:
        await other_process.dispose()


async def test_rate_limited_is_a_graphql_error_with_retry_after(gateway, db, partner_pair, tight_limit):
    _, shop_token, _, _ = partner_pair
    for _ in range(tight_limit):
        body = await gateway.gql(shop_token, q.MEMBER, {"n": new_member_number()})
        assert body["data"]["member"] is None
    body = await gateway.gql(shop_token, q.MEMBER, {"n": new_member_number()})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] >= 1
    assert "too many unknown member numbers" in error["message"]
