"""The GraphQL contract over HTTP with real OAuth tokens: the partner's and the admin's story."""

from __future__ import annotations

import uuid

from tests.factories import unique
from tests.gateway import queries as q


def _money(amount: str, currency: str = "EUR") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


async def _enroll(gateway, token, **extra) -> dict:
    body = await gateway.gql(token, q.ENROLL, {"input": {"partnerCustomerRef": unique("c"), **extra}})
    payload = body["data"]["enrollMember"]
    assert payload["userErrors"] == [], payload
    return payload["member"]


async def test_admin_creates_a_partner_whose_credentials_work(gateway, admin_token):
    name = f"Bakery {uuid.uuid4().hex[:6]}"
    body = await gateway.gql(
        admin_token,
        q.CREATE_PARTNER,
        {
            "input": {
                "name": name,
                "currency": "EUR",
                "issuePrice": "0.010",
                "redeemPrice": "0.008",
                "earnRate": "1",
                "returnWindowDays": 0,
            }
        },
    )
    payload = body["data"]["createPartner"]
    assert payload["userErrors"] == []
    assert payload["partner"]["name"] == name
    assert payload["partner"]["contract"]["redeemPrice"] == {"amount": "0.008000", "currency": "EUR"}
    creds = payload["credentials"]
    token = await gateway.token(creds["clientId"], creds["clientSecret"])
    member = await _enroll(gateway, token)
    assert len(member["memberNumber"]) == 12


async def test_create_partner_reports_every_bad_field(gateway, admin_token):
    body = await gateway.gql(
        admin_token,
        q.CREATE_PARTNER,
        {
            "input": {
                "name": "",
                "currency": "EURO",
                "issuePrice": "-1",
                "redeemPrice": "0.0000001",
                "earnRate": "1",
            }
        },
    )
    errors = body["data"]["createPartner"]["userErrors"]
    assert {e["field"] for e in errors} == {"name", "currency", "issuePrice", "redeemPrice"}


async def test_partners_connection_pages_with_cursors(gateway, admin_token, partner_pair):
    first = await gateway.gql(admin_token, q.PARTNERS, {"first": 1})
    page = first["data"]["partners"]
    assert len(page["edges"]) == 1 and page["pageInfo"]["hasNextPage"] is True
    second = await gateway.gql(admin_token, q.PARTNERS, {"first": 1, "after": page["pageInfo"]["endCursor"]})
    assert second["data"]["partners"]["edges"][0]["node"]["id"] != page["edges"][0]["node"]["id"]
    too_big = await gateway.gql(admin_token, q.PARTNERS, {"first": 101})
    assert too_big["data"] is None or too_big["data"]["partners"] is None
    assert too_big["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_cross_partner_story_through_graphql(gateway, partner_pair):
    _cafe, cafe_token, _airline, airline_token = partner_pair
    member = await _enroll(gateway, cafe_token)
    number = member["memberNumber"]
    order = unique("o")
    earned = (
        await gateway.gql(
            cafe_token,
            q.PURCHASE,
            {
                "input": {
                    "idempotencyKey": unique("k"),
                    "memberNumber": number,
                    "orderId": order,
                    "amount": _money("45.60"),
                }
            },
        )
    )["data"]["recordPurchase"]
    assert earned["userErrors"] == []
    assert earned["pointsEarned"] == 45
    assert earned["transaction"]["status"] == "AVAILABLE"
    assert earned["transaction"]["kind"] == "EARN"

    # The airline links the member (its own customer ref for them) before spending their points.
    await _enroll(gateway, airline_token, memberNumber=number)
    redeemed = (
        await gateway.gql(
            airline_token,
            q.REDEEM,
            {
                "input": {
                    "idempotencyKey": unique("k"),
                    "memberNumber": number,
                    "points": 40,
                    "orderId": unique("o"),
                }
            },
        )
    )["data"]["redeemPoints"]
    assert redeemed["userErrors"] == []
    assert redeemed["redemption"]["value"] == {"amount": "0.32", "currency": "EUR"}

    # The airline knows the member now but sees only its own history.
    seen = (await gateway.gql(airline_token, q.MEMBER, {"n": number}))["data"]["member"]
    assert seen["balance"] == {"available": 5, "pending": 0}
    assert [e["node"]["kind"] for e in seen["transactions"]["edges"]] == ["REDEEM"]

    refund = (
        await gateway.gql(cafe_token, q.REVERSE, {"input": {"idempotencyKey": unique("k"), "orderId": order}})
    )["data"]["reversePurchase"]
    assert refund["reversal"]["points"] == 45
    assert refund["reversal"]["refunded"] == {"amount": "45.60", "currency": "EUR"}
    seen = (await gateway.gql(cafe_token, q.MEMBER, {"n": number}))["data"]["member"]
    assert seen["balance"]["available"] == -40
    kinds = [e["node"]["kind"] for e in seen["transactions"]["edges"]]
    assert kinds == ["REVERSE", "EARN"]
    assert seen["transactions"]["edges"][1]["node"]["status"] == "REVERSED"

    cancelled = (
        await gateway.gql(
            airline_token,
            q.CANCEL,
            {"input": {"idempotencyKey": unique("k"), "redemptionId": redeemed["redemption"]["id"]}},
        )
    )["data"]["cancelRedemption"]
    assert cancelled["userErrors"] == [] and cancelled["pointsRestored"] == 40
    seen = (await gateway.gql(cafe_token, q.MEMBER, {"n": number}))["data"]["member"]
    assert seen["balance"]["available"] == 0


async def test_transactions_page_newest_first(gateway, partner_pair):
    _cafe, token, _, _ = partner_pair
    number = (await _enroll(gateway, token))["memberNumber"]
    for amount in ("1", "2", "3"):
        await gateway.gql(
            token,
            q.PURCHASE,
            {
                "input": {
                    "idempotencyKey": unique("k"),
                    "memberNumber": number,
                    "orderId": unique("o"),
                    "amount": _money(amount),
                }
            },
        )
    page1 = (await gateway.gql(token, q.MEMBER, {"n": number, "first": 2}))["data"]["member"]
    points = [e["node"]["points"] for e in page1["transactions"]["edges"]]
    assert points == [3, 2] and page1["transactions"]["pageInfo"]["hasNextPage"]
    page2 = await gateway.gql(
        token, q.MEMBER, {"n": number, "first": 2, "after": page1["transactions"]["pageInfo"]["endCursor"]}
    )
    rest = page2["data"]["member"]["transactions"]
    assert [e["node"]["points"] for e in rest["edges"]] == [1]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_bad_purchase_input_is_user_errors_not_a_500(gateway, partner_pair):
    _, token, _, _ = partner_pair
    body = await gateway.gql(
        token,
        q.PURCHASE,
        {
            "input": {
                "idempotencyKey": "k" * 201,
                "memberNumber": "12345",
                "orderId": "",
                "amount": _money("0", "ZZZ"),
            }
        },
    )
    errors = body["data"]["recordPurchase"]["userErrors"]
    assert {e["field"] for e in errors} == {"idempotencyKey", "memberNumber", "orderId", "amount.currency"}
    assert all(e["message"] for e in errors)


async def test_enrolling_the_same_customer_twice_returns_the_same_member(gateway, partner_pair):
    _, token, _, other_token = partner_pair
    ref = unique("c")
    first = await gateway.gql(token, q.ENROLL, {"input": {"partnerCustomerRef": ref}})
    again = await gateway.gql(token, q.ENROLL, {"input": {"partnerCustomerRef": ref}})
    assert first["data"]["enrollMember"]["member"] == again["data"]["enrollMember"]["member"]
    number = first["data"]["enrollMember"]["member"]["memberNumber"]
    linked = await gateway.gql(
        other_token, q.ENROLL, {"input": {"partnerCustomerRef": unique("c"), "memberNumber": number}}
    )
    assert linked["data"]["enrollMember"]["member"]["memberNumber"] == number
    bad = await gateway.gql(
        other_token, q.ENROLL, {"input": {"partnerCustomerRef": unique("c"), "memberNumber": "123456789012"}}
    )
    assert [e["code"] for e in bad["data"]["enrollMember"]["userErrors"]] == ["INVALID_MEMBER_NUMBER"]
