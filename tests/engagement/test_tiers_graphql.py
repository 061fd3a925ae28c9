"""Tiers through the gateway: createTier (admins), Me.tier for the member, Member.tier for a partner."""

from __future__ import annotations

import pytest

from services.members import tiers as member_tiers
from tests.conftest import member_token
from tests.engagement.tiers_helpers import no_tiers  # noqa: F401
from tests.factories import earn, enroll, make_partner

pytestmark = pytest.mark.usefixtures("no_tiers")

CREATE = """
mutation($input: CreateTierInput!) {
  createTier(input: $input) {
    tier { id name qualifyingPoints multiplier benefits }
    userErrors { code field message }
  }
}"""


async def test_create_tier_and_read_it_as_member_and_partner(gateway, db, admin_token) -> None:
    base = {"name": "Blue", "qualifyingPoints": 0, "multiplier": "1", "benefits": []}
    created = await gateway.gql(admin_token, CREATE, {"input": base})
    assert created["data"]["createTier"]["tier"]["name"] == "Blue"
    gold = {"name": "Gold", "qualifyingPoints": 500, "multiplier": "1.5", "benefits": ["lounge"]}
    body = await gateway.gql(admin_token, CREATE, {"input": gold})
    assert body["data"]["createTier"]["tier"]["multiplier"] == "1.5"
    bad = await gateway.gql(admin_token, CREATE, {"input": {**gold, "name": "Red", "multiplier": "0.5"}})
    assert bad["data"]["createTier"]["userErrors"][0]["field"] == "multiplier"
    db.cache.forget(member_tiers.CACHE_KEY)  # the gateway forgot at once; this process forgets too

    cafe = await make_partner(db, earn_rate="1")
    member = await enroll(db, cafe)
    partner = await gateway.partner_token(cafe)
    denied = await gateway.gql(partner, CREATE, {"input": {**gold, "name": "Green", "qualifyingPoints": 9}})
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    assert (await earn(db, cafe, member.member_number, "120.00")).errors == []
    token = await member_token(db, member.id)
    me = await gateway.gql(token, "{ me { tier { name nextTier { name } pointsToNext qualifiesUntil } } }")
    assert me["data"]["me"]["tier"]["name"] == "Blue"
    assert me["data"]["me"]["tier"]["nextTier"] == {"name": "Gold"}
    assert (
        me["data"]["me"]["tier"]["pointsToNext"] == "380" or me["data"]["me"]["tier"]["pointsToNext"] == 380
    )

    assert (await earn(db, cafe, member.member_number, "400.00")).errors == []  # 520: Gold
    seen = await gateway.gql(
        partner,
        "query($n: String!) { member(memberNumber: $n) { tier { name } } }",
        {"n": member.member_number},
    )
    assert seen["data"]["member"]["tier"] == {"name": "Gold"}
    me = await gateway.gql(token, "{ me { tier { name nextTier { name } pointsToNext } } }")
    assert me["data"]["me"]["tier"] == {"name": "Gold", "nextTier": None, "pointsToNext": None}
    listed = await gateway.gql(partner, "{ tiers { name qualifyingPoints } }")
    assert [t["name"] for t in listed["data"]["tiers"]] == ["Blue", "Gold"]
