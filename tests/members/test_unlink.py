"""A member unlinks a partner: the partner then knows them no better than a stranger, in every
gateway process at once, until the member presents their card there again."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.gateway.app import create_app
from shared.ids import to_global_id
from tests.conftest import Gateway, member_token
from tests.factories import earn, enroll, make_partner

UNLINK = """mutation($id: ID!) { unlinkPartner(input: {partnerId: $id}) {
  unlinked { name } links { partner { name } how } userErrors { code field } } }"""
LINKS = "{ me { links { partner { name } how } } }"
LOOKUP = "query($n: String!) { member(memberNumber: $n) { memberNumber balance { available } } }"
REDEEM = """mutation($n: String!, $key: String!) { redeemPoints(input: {idempotencyKey: $key,
  memberNumber: $n, points: 1, orderId: $key}) { redemption { points } userErrors { code } } }"""
AUTHORIZE = """mutation($n: String!, $key: String!) { authorizeRedemption(input: {idempotencyKey: $key,
  memberNumber: $n, points: 1, orderId: $key, expiresIn: "PT1M"})
  { authorization { id } userErrors { code } } }"""
EARN = """mutation($n: String!, $key: String!) { recordPurchase(input: {idempotencyKey: $key,
  memberNumber: $n, orderId: $key, amount: {amount: "10", currency: "EUR"}})
  { pointsEarned userErrors { code } } }"""


def key() -> str:
    return uuid.uuid4().hex


async def _partner_view(gateway: Gateway, token: str, number: str) -> dict:
    """What the partner gets for the member: lookup, redeem, authorize."""
    lookup = (await gateway.gql(token, LOOKUP, {"n": number}))["data"]["member"]
    redeem = (await gateway.gql(token, REDEEM, {"n": number, "key": key()}))["data"]["redeemPoints"]
    hold = (await gateway.gql(token, AUTHORIZE, {"n": number, "key": key()}))["data"]["authorizeRedemption"]
    return {
        "lookup": lookup,
        "redeem": [e["code"] for e in redeem["userErrors"]],
        "authorize": [e["code"] for e in hold["userErrors"]],
    }


async def test_an_unlinked_partner_sees_the_member_as_a_stranger_until_the_card_is_presented(gateway, db):
    cafe, other = await make_partner(db), await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "100")
    stranger = await enroll(db, other)
    cafe_token = await gateway.partner_token(cafe)
    token = await member_token(db, member.id)

    body = await gateway.gql(token, UNLINK, {"id": to_global_id("Partner", cafe.id)})
    assert body["data"]["unlinkPartner"] == {"unlinked": {"name": cafe.name}, "links": [], "userErrors": []}

    # Exactly as for a member the cafe never knew.
    seen = await _partner_view(gateway, cafe_token, member.member_number)
    assert seen == await _partner_view(gateway, cafe_token, stranger.member_number)
    assert seen == {"lookup": None, "redeem": ["MEMBER_NOT_FOUND"], "authorize": ["MEMBER_NOT_FOUND"]}
    node = await gateway.gql(
        cafe_token, "query($id: ID!) { node(id: $id) { id } }", {"id": to_global_id("Member", member.id)}
    )
    assert node["data"]["node"] is None
    # The points earned there stay the member's.
    assert (await gateway.gql(token, "{ me { balance { available } } }"))["data"]["me"]["balance"] == {
        "available": 100
    }

    # Presenting the card at the till links again, as CARD_PRESENTED.
    earned = (await gateway.gql(cafe_token, EARN, {"n": member.member_number, "key": key()}))["data"]
    assert earned["recordPurchase"] == {"pointsEarned": 10, "userErrors": []}
    assert (await gateway.gql(token, LINKS))["data"]["me"]["links"] == [
        {"partner": {"name": cafe.name}, "how": "CARD_PRESENTED"}
    ]
    assert (await gateway.gql(cafe_token, LOOKUP, {"n": member.member_number}))["data"]["member"] == {
        "memberNumber": member.member_number,
        "balance": {"available": 110},
    }


async def test_unlink_refusals(gateway, db):
    cafe, other = await make_partner(db), await make_partner(db)
    member = await enroll(db, cafe)
    token = await member_token(db, member.id)

    async def codes(partner_id: str) -> list[tuple[str, str]]:
        body = await gateway.gql(token, UNLINK, {"id": partner_id})
        return [(e["code"], e["field"]) for e in body["data"]["unlinkPartner"]["userErrors"]]

    assert await codes(to_global_id("Partner", 10**12)) == [("PARTNER_NOT_FOUND", "partnerId")]
    assert await codes(to_global_id("Partner", other.id)) == [("NOT_LINKED", "partnerId")]
    assert await codes(to_global_id("Member", member.id)) == [("INVALID_ID", "partnerId")]
    # Nothing was unlinked by any of them.
    assert (await gateway.gql(token, LINKS))["data"]["me"]["links"] == [
        {"partner": {"name": cafe.name}, "how": "ENROLLED"}
    ]
    # A partner token cannot unlink anybody.
    body = await gateway.gql(
        await gateway.partner_token(cafe), UNLINK, {"id": to_global_id("Partner", cafe.id)}
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.fixture
async def second_gateway(database_url: str):
    """Another gateway process's state: its own app, database pool, member cache and listener."""
    app = create_app(database_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield Gateway(client)


async def test_every_gateway_forgets_the_link_at_once(gateway, second_gateway, db):
    """The second gateway remembers the link after an earn (its hot path skips the query); once
    the unlink through the first has answered, the second's next earn is a card presentation
    that links again, not an earn for a member it still believes linked."""
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    cafe_on_second = await second_gateway.partner_token(cafe)
    for _ in range(2):  # the first fills the second gateway's cache, the second is served from it
        earned = await second_gateway.gql(cafe_on_second, EARN, {"n": member.member_number, "key": key()})
        assert earned["data"]["recordPurchase"]["userErrors"] == []
    token = await member_token(db, member.id)

    body = await gateway.gql(token, UNLINK, {"id": to_global_id("Partner", cafe.id)})
    assert body["data"]["unlinkPartner"]["userErrors"] == []

    assert (await second_gateway.gql(cafe_on_second, LOOKUP, {"n": member.member_number}))["data"][
        "member"
    ] is None
    redeemed = await second_gateway.gql(cafe_on_second, REDEEM, {"n": member.member_number, "key": key()})
    assert [e["code"] for e in redeemed["data"]["redeemPoints"]["userErrors"]] == ["MEMBER_NOT_FOUND"]
    earned = await second_gateway.gql(cafe_on_second, EARN, {"n": member.member_number, "key": key()})
    assert earned["data"]["recordPurchase"]["userErrors"] == []
    assert (await gateway.gql(token, LINKS))["data"]["me"]["links"] == [
        {"partner": {"name": cafe.name}, "how": "CARD_PRESENTED"}
    ]
