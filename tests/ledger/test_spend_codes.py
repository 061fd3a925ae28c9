"""Spending consent: a member who requires a code has their points spent only with a one-time
code from their app, consumed by exactly one successful spend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.ledger import service as ledger
from services.members import account, spend_codes
from services.partners import catalog
from shared import clock
from shared.access import MEMBER_SCOPE, Principal
from shared.ids import to_global_id
from tests.conftest import member_token
from tests.factories import (
    authorize,
    balance,
    capture,
    earn,
    enroll,
    make_partner,
    redeem,
    unique,
    violations,
)


def me(member_id: int) -> Principal:
    return Principal(client_id="test-member-app", scopes=frozenset({MEMBER_SCOPE}), member_id=member_id)


def codes(outcome: ledger.Outcome) -> list[tuple[str, str | None]]:
    return [(e.code.value, e.field) for e in outcome.errors]


@pytest.fixture
async def cafe(db):
    return await make_partner(db)


async def _consenting_member(db, cafe, points: str = "100", *, requires: bool = True):
    member = await enroll(db, cafe)
    assert (await earn(db, cafe, member.member_number, points)).errors == []
    await account.update_settings(db, me(member.id), require_code_to_spend=requires)
    return member


async def test_a_member_who_requires_a_code_is_refused_without_one_or_with_a_bad_one(db, cafe):
    member = await _consenting_member(db, cafe)
    assert codes(await redeem(db, cafe, member.member_number, 10)) == [("MEMBER_CODE_REQUIRED", "memberCode")]
    assert codes(await redeem(db, cafe, member.member_number, 10, member_code="00000000")) == [
        ("MEMBER_CODE_INVALID", "memberCode")
    ]
    # Another member's code is not this member's.
    other = await _consenting_member(db, cafe)
    theirs = await spend_codes.create_spend_code(db, me(other.id))
    assert codes(await redeem(db, cafe, member.member_number, 10, member_code=theirs.code)) == [
        ("MEMBER_CODE_INVALID", "memberCode")
    ]
    assert (await balance(db, member.id)).available == 100

    mine = await spend_codes.create_spend_code(db, me(member.id))
    assert len(mine.code) == 8 and mine.code.isdigit()
    assert timedelta(seconds=110) < mine.expires_at - clock.now() <= timedelta(minutes=2)
    assert (await redeem(db, cafe, member.member_number, 10, member_code=mine.code)).errors == []
    # Used: one code, one spend.
    assert codes(await redeem(db, cafe, member.member_number, 10, member_code=mine.code)) == [
        ("MEMBER_CODE_INVALID", "memberCode")
    ]
    assert (await balance(db, member.id)).available == 90
    assert await violations(db) == []


async def test_an_expired_code_is_refused(db, cafe):
    member = await _consenting_member(db, cafe)
    code = await spend_codes.create_spend_code(db, me(member.id))
    later = clock.now() + timedelta(minutes=2, seconds=1)
    clock.set_clock(lambda: later)
    try:
        refused = await redeem(db, cafe, member.member_number, 10, member_code=code.code)
    finally:
        clock.set_clock(None)
    assert codes(refused) == [("MEMBER_CODE_INVALID", "memberCode")]
    assert (await redeem(db, cafe, member.member_number, 10, member_code=code.code)).errors == []


async def test_a_new_code_voids_the_previous_one(db, cafe):
    member = await _consenting_member(db, cafe)
    first = await spend_codes.create_spend_code(db, me(member.id))
    second = await spend_codes.create_spend_code(db, me(member.id))
    assert (
        codes(await redeem(db, cafe, member.member_number, 1, member_code=first.code))
        == [("MEMBER_CODE_INVALID", "memberCode")]
        or first.code == second.code
    )
    assert (await redeem(db, cafe, member.member_number, 1, member_code=second.code)).errors == []


async def test_a_failed_spend_leaves_the_code_unused(db, cafe):
    member = await _consenting_member(db, cafe)
    code = await spend_codes.create_spend_code(db, me(member.id))
    assert codes(await redeem(db, cafe, member.member_number, 1000, member_code=code.code)) == [
        ("INSUFFICIENT_POINTS", "points")
    ]
    assert (await redeem(db, cafe, member.member_number, 100, member_code=code.code)).errors == []
    assert (await balance(db, member.id)).available == 0


async def test_a_retry_of_a_successful_spend_returns_its_first_answer(db, cafe):
    """The code is used by then, but the key was answered: the answer stands, nothing moves."""
    member = await _consenting_member(db, cafe)
    code = await spend_codes.create_spend_code(db, me(member.id))
    key, order = unique("key"), unique("order")
    first = await redeem(db, cafe, member.member_number, 10, key=key, order_id=order, member_code=code.code)
    assert first.errors == []
    again = await redeem(db, cafe, member.member_number, 10, key=key, order_id=order, member_code=code.code)
    assert again == first
    assert (await balance(db, member.id)).available == 90
    # A refused code is not stored against the key: with a new code the same key goes through.
    key = unique("key")
    assert codes(await redeem(db, cafe, member.member_number, 5, key=key)) == [
        ("MEMBER_CODE_REQUIRED", "memberCode")
    ]
    fresh = await spend_codes.create_spend_code(db, me(member.id))
    assert (await redeem(db, cafe, member.member_number, 5, key=key, member_code=fresh.code)).errors == []


async def test_a_code_sent_for_a_member_who_does_not_require_one_is_still_checked(db, cafe):
    member = await _consenting_member(db, cafe, requires=False)
    assert (await redeem(db, cafe, member.member_number, 1)).errors == []
    assert codes(await redeem(db, cafe, member.member_number, 1, member_code="12345678")) == [
        ("MEMBER_CODE_INVALID", "memberCode")
    ]
    code = await spend_codes.create_spend_code(db, me(member.id))
    assert (await redeem(db, cafe, member.member_number, 1, member_code=code.code)).errors == []
    assert codes(await redeem(db, cafe, member.member_number, 1, member_code=code.code)) == [
        ("MEMBER_CODE_INVALID", "memberCode")
    ]


async def test_an_authorization_consumes_the_code_and_its_capture_needs_none(db, cafe):
    member = await _consenting_member(db, cafe)
    assert codes(await authorize(db, cafe, member.member_number, 10)) == [
        ("MEMBER_CODE_REQUIRED", "memberCode")
    ]
    code = await spend_codes.create_spend_code(db, me(member.id))
    held = await ledger.authorize_redemption(
        db,
        cafe.principal,
        idempotency_key=unique("key"),
        member_number=member.member_number,
        points=10,
        order_id=unique("order"),
        expires_in=timedelta(minutes=5),
        member_code=code.code,
    )
    assert held.errors == []
    assert held.result is not None
    authorization = to_global_id("Authorization", held.result["authorization_id"])
    assert (await capture(db, cafe, authorization)).errors == []
    assert codes(await redeem(db, cafe, member.member_number, 1, member_code=code.code)) == [
        ("MEMBER_CODE_INVALID", "memberCode")
    ]
    assert (await balance(db, member.id)).available == 90


async def test_twenty_concurrent_spends_with_one_code_exactly_one_succeeds(db, cafe):
    member = await _consenting_member(db, cafe)
    code = await spend_codes.create_spend_code(db, me(member.id))
    outcomes = await asyncio.gather(
        *(redeem(db, cafe, member.member_number, 5, member_code=code.code) for _ in range(20))
    )
    assert sum(1 for o in outcomes if not o.errors) == 1
    assert sorted({c for o in outcomes for c in codes(o)}) == [("MEMBER_CODE_INVALID", "memberCode")]
    assert (await balance(db, member.id)).available == 95
    assert await violations(db) == []


REDEEM_REWARD = """mutation($input: RedeemRewardInput!) { redeemReward(input: $input) {
  redemption { points voucherCode } userErrors { code field } } }"""


async def test_rewards_need_a_code_from_partners_not_from_the_member_in_their_app(gateway, db, cafe):
    member = await _consenting_member(db, cafe)
    reward = await catalog.create_reward(db, cafe.principal, name=unique("coffee"), points_cost=20)
    reward_id = to_global_id("Reward", reward.id)
    partner_token = await gateway.partner_token(cafe)

    async def buy(token: str, **fields) -> dict:
        body = await gateway.gql(
            token,
            REDEEM_REWARD,
            {"input": {"idempotencyKey": unique("key"), "rewardId": reward_id, **fields}},
        )
        assert body.get("errors") is None, body
        return body["data"]["redeemReward"]

    refused = await buy(partner_token, memberNumber=member.member_number)
    assert refused["userErrors"] == [{"code": "MEMBER_CODE_REQUIRED", "field": "memberCode"}]
    assert (await buy(partner_token))["userErrors"] == [{"code": "REQUIRED", "field": "memberNumber"}]
    code = await spend_codes.create_spend_code(db, me(member.id))
    bought = await buy(partner_token, memberNumber=member.member_number, memberCode=code.code)
    assert bought["userErrors"] == [] and bought["redemption"]["points"] == 20

    token = await member_token(db, member.id)
    assert (await buy(token))["redemption"]["points"] == 20
    assert (await buy(token, memberNumber=member.member_number))["redemption"]["points"] == 20
    stranger = await enroll(db, cafe)
    assert (await buy(token, memberNumber=stranger.member_number))["userErrors"] == [
        {"code": "MEMBER_NOT_FOUND", "field": "memberNumber"}
    ]
    assert (await balance(db, member.id)).available == 40


async def test_a_member_buys_a_reward_of_a_partner_they_are_not_linked_to(gateway, db, cafe):
    """The member's own act in their app: the reward's partner is charged, no link is made."""
    shop = await make_partner(db)
    member = await _consenting_member(db, cafe, requires=False)
    reward = await catalog.create_reward(db, shop.principal, name=unique("mug"), points_cost=30)
    token = await member_token(db, member.id)
    key = unique("key")
    variables = {"input": {"idempotencyKey": key, "rewardId": to_global_id("Reward", reward.id)}}
    body = await gateway.gql(token, REDEEM_REWARD, variables)
    assert body["data"]["redeemReward"]["redemption"]["points"] == 30
    links = (await gateway.gql(token, "{ me { links { partner { name } } } }"))["data"]["me"]["links"]
    assert links == [{"partner": {"name": cafe.name}}]
    history = await gateway.gql(
        token, "{ me { transactions(first: 1) { edges { node { kind partner { name } } } } } }"
    )
    assert history["data"]["me"]["transactions"]["edges"][0]["node"] == {
        "kind": "REDEEM",
        "partner": {"name": shop.name},
    }
    # Another member of the same app using the same key is not answered with this member's result.
    other = await _consenting_member(db, cafe, requires=False)
    theirs = await gateway.gql(await member_token(db, other.id), REDEEM_REWARD, variables)
    assert theirs["data"]["redeemReward"]["userErrors"] == []
    assert (await balance(db, other.id)).available == 70
    assert (await balance(db, member.id)).available == 70
