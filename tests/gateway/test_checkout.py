"""Checkout over GraphQL: authorize, capture, void; and buying a catalogue reward."""

from __future__ import annotations

from shared.ids import to_global_id
from tests.factories import earn, enroll, link, unique

AUTHORIZE = """mutation($input: AuthorizeRedemptionInput!) { authorizeRedemption(input: $input) {
  authorization { id points status expiresAt } userErrors { code field message } } }"""
CAPTURE = """mutation($input: CaptureRedemptionInput!) { captureRedemption(input: $input) {
  redemption { id points value { amount currency } } userErrors { code field message } } }"""
VOID = """mutation($input: VoidRedemptionInput!) { voidRedemption(input: $input) {
  authorization { id status } userErrors { code field message } } }"""
BALANCE = """query($n: String!) { member(memberNumber: $n) { balance { available pending held } } }"""
CREATE_REWARD = """mutation($input: CreateRewardInput!) { createReward(input: $input) {
  reward { id name pointsCost stock archived } userErrors { code field message } } }"""
REDEEM_REWARD = """mutation($input: RedeemRewardInput!) { redeemReward(input: $input) {
  redemption { id points voucherCode } userErrors { code field message } } }"""
REWARDS = """query($p: ID) { rewards(partnerId: $p, first: 10) { edges { node { id name stock } } } }"""


async def test_authorize_capture_void_over_graphql(gateway, db, partner_pair):
    cafe, token, _, _ = partner_pair
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "100")
    held = (
        await gateway.gql(
            token,
            AUTHORIZE,
            {
                "input": {
                    "idempotencyKey": unique("k"),
                    "memberNumber": member.member_number,
                    "points": 60,
                    "orderId": unique("o"),
                    "expiresIn": "PT15M",
                }
            },
        )
    )["data"]["authorizeRedemption"]
    assert held["userErrors"] == [] and held["authorization"]["status"] == "ACTIVE"
    balance = (await gateway.gql(token, BALANCE, {"n": member.member_number}))["data"]["member"]
    assert balance["balance"] == {"available": 40, "pending": 0, "held": 60}
    captured = (
        await gateway.gql(
            token,
            CAPTURE,
            {
                "input": {
                    "idempotencyKey": unique("k"),
                    "authorizationId": held["authorization"]["id"],
                    "points": 50,
                }
            },
        )
    )["data"]["captureRedemption"]
    assert captured["redemption"]["points"] == 50
    voided = (
        await gateway.gql(
            token,
            VOID,
            {"input": {"idempotencyKey": unique("k"), "authorizationId": held["authorization"]["id"]}},
        )
    )["data"]["voidRedemption"]
    assert [e["code"] for e in voided["userErrors"]] == ["AUTHORIZATION_NOT_ACTIVE"]
    balance = (await gateway.gql(token, BALANCE, {"n": member.member_number}))["data"]["member"]
    assert balance["balance"] == {"available": 50, "pending": 0, "held": 0}
    bad = (
        await gateway.gql(
            token,
            AUTHORIZE,
            {
                "input": {
                    "idempotencyKey": unique("k"),
                    "memberNumber": member.member_number,
                    "points": 1,
                    "orderId": unique("o"),
                    "expiresIn": "P60D",
                }
            },
        )
    )["data"]["authorizeRedemption"]
    assert [e["field"] for e in bad["userErrors"]] == ["expiresIn"]


async def test_a_partner_sells_a_reward_and_others_browse_it(gateway, db, partner_pair):
    cafe, token, _, other_token = partner_pair
    created = (
        await gateway.gql(
            token, CREATE_REWARD, {"input": {"name": "Flat white", "pointsCost": 25, "stock": 2}}
        )
    )["data"]["createReward"]
    assert created["userErrors"] == []
    reward_id = created["reward"]["id"]
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "60")
    bought = (
        await gateway.gql(
            token,
            REDEEM_REWARD,
            {
                "input": {
                    "idempotencyKey": unique("k"),
                    "memberNumber": member.member_number,
                    "rewardId": reward_id,
                    "quantity": 2,
                }
            },
        )
    )["data"]["redeemReward"]
    assert bought["redemption"]["points"] == 50 and len(bought["redemption"]["voucherCode"]) == 16
    seen = await gateway.gql(other_token, REWARDS, {"p": to_global_id("Partner", cafe.id)})
    names = [e["node"]["name"] for e in seen["data"]["rewards"]["edges"]]
    assert "Flat white" in names
    other = partner_pair[2]
    await link(db, other, member)
    foreign = (
        await gateway.gql(
            other_token,
            REDEEM_REWARD,
            {
                "input": {
                    "idempotencyKey": unique("k"),
                    "memberNumber": member.member_number,
                    "rewardId": reward_id,
                }
            },
        )
    )["data"]["redeemReward"]
    assert [e["code"] for e in foreign["userErrors"]] == ["REWARD_NOT_FOUND"]
