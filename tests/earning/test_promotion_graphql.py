"""Promotions over GraphQL: createPromotion (userErrors naming the field), the breakdown's
promotion, promotions with budget spent and left, archivePromotion, previewEarn == recordPurchase."""

from __future__ import annotations

from tests.earning.test_graphql import PREVIEW, PURCHASE, purchase
from tests.factories import enroll, make_partner

CREATE = """
mutation($input: CreatePromotionInput!) {
  createPromotion(input: $input) {
    promotion { id name coalition budgetPoints budgetSpent budgetLeft recurrenceRule recurrenceDuration }
    userErrors { code field message }
  }
}"""
LIST = """
query { promotions(first: 10) { edges { node { id name budgetSpent budgetLeft archivedAt } } } }"""
ARCHIVE = """
mutation($input: ArchivePromotionInput!) {
  archivePromotion(input: $input) { promotion { id archivedAt } userErrors { code field } }
}"""


async def test_create_promotion_and_its_breakdown(db, gateway):
    shop = await make_partner(db, earn_rate="1")
    token = await gateway.partner_token(shop)
    member = await enroll(db, shop)
    created = await gateway.gql(
        token,
        CREATE,
        {
            "input": {
                "name": "coffee week",
                "conditions": {"categories": ["coffee"]},
                "effect": {"multiplier": "2"},
                "budgetPoints": 100,
                "recurrence": {"rule": "FREQ=DAILY", "duration": "PT24H"},
                "startsAt": "2026-01-01T00:00:00Z",
            }
        },
    )
    answer = created["data"]["createPromotion"]
    assert answer["userErrors"] == []
    promo = answer["promotion"]
    assert (promo["budgetSpent"], promo["budgetLeft"], promo["coalition"]) == (0, 100, False)
    assert promo["recurrenceDuration"] == "PT86400S"
    lines = [
        {"sku": "latte", "category": "coffee", "amount": {"amount": "4.00", "currency": "EUR"}},
        {"sku": "bun", "amount": {"amount": "2.00", "currency": "EUR"}},
    ]
    preview = await gateway.gql(token, PREVIEW, {"input": purchase(member.member_number, "6.00", lines)})
    body = await gateway.gql(token, PURCHASE, {"input": purchase(member.member_number, "6.00", lines)})
    recorded = body["data"]["recordPurchase"]
    assert recorded["pointsEarned"] == 10
    assert recorded["earnBreakdown"][-1] == {
        "rule": None,
        "promotion": {"id": promo["id"], "name": "coffee week"},
        "lines": [{"sku": "latte"}],
        "points": 4,
    }
    assert preview["data"]["previewEarn"]["points"] == 10
    assert preview["data"]["previewEarn"]["earnBreakdown"] == recorded["earnBreakdown"]
    listed = await gateway.gql(token, LIST)
    node = listed["data"]["promotions"]["edges"][0]["node"]
    assert (node["budgetSpent"], node["budgetLeft"]) == (4, 96)
    archived = await gateway.gql(token, ARCHIVE, {"input": {"id": promo["id"]}})
    assert archived["data"]["archivePromotion"]["promotion"]["archivedAt"] is not None
    after = await gateway.gql(token, PURCHASE, {"input": purchase(member.member_number, "6.00", lines)})
    assert after["data"]["recordPurchase"]["pointsEarned"] == 6


async def test_bad_rrule_and_effects_name_their_fields(db, gateway):
    shop = await make_partner(db)
    token = await gateway.partner_token(shop)
    bad = await gateway.gql(
        token,
        CREATE,
        {
            "input": {
                "name": "x",
                "effect": {"bonusPoints": 5},
                "recurrence": {"rule": "FREQ=NEVER", "duration": "PT1H"},
            }
        },
    )
    errors = bad["data"]["createPromotion"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID", "recurrence.rule")]
    two = await gateway.gql(
        token, CREATE, {"input": {"name": "x", "effect": {"bonusPoints": 5, "multiplier": "2"}}}
    )
    assert [e["field"] for e in two["data"]["createPromotion"]["userErrors"]] == ["effect"]
    none = await gateway.gql(token, CREATE, {"input": {"name": "x", "effect": {}}})
    assert [e["field"] for e in none["data"]["createPromotion"]["userErrors"]] == ["effect"]
