"""Promo codes over GraphQL: generatePromoCodes with a partner token (its own promotion; FORBIDDEN
for another partner's), promoCodeBatches, and the codes used through recordPurchase."""

from __future__ import annotations

from shared.ids import to_global_id
from tests.earning.promo_helpers import promotion
from tests.earning.test_graphql import PURCHASE, purchase
from tests.factories import enroll, make_partner

GENERATE = """
mutation($input: GeneratePromoCodesInput!) {
  generatePromoCodes(input: $input) {
    batch { id promotionId prefix count usesPerCode usesPerMember expiresAt createdAt }
    codes
    userErrors { code field message }
  }
}"""
BATCHES = "query($p: ID!) { promoCodeBatches(promotionId: $p) { id count usesPerCode } }"


async def test_a_partner_generates_codes_for_its_promotion_and_customers_use_them(db, gateway):
    shop = await make_partner(db)
    token = await gateway.partner_token(shop)
    promo = to_global_id("Promotion", await promotion(db, shop))
    body = await gateway.gql(
        token, GENERATE, {"input": {"promotionId": promo, "count": 3, "prefix": "cafe", "usesPerCode": 1}}
    )
    answer = body["data"]["generatePromoCodes"]
    assert answer["userErrors"] == []
    assert answer["batch"]["promotionId"] == promo and answer["batch"]["count"] == 3
    assert answer["batch"]["prefix"] == "CAFE" and answer["batch"]["usesPerMember"] is None
    assert len(set(answer["codes"])) == 3 and all(c.startswith("CAFE") for c in answer["codes"])
    listed = await gateway.gql(token, BATCHES, {"p": promo})
    assert listed["data"]["promoCodeBatches"] == [{"id": answer["batch"]["id"], "count": 3, "usesPerCode": 1}]

    ann, bob = await enroll(db, shop), await enroll(db, shop)
    code = answer["codes"][0]
    typed = f"{code[:4].lower()}-{code[4:]}"
    used = await gateway.gql(
        token, PURCHASE, {"input": purchase(ann.member_number, "5.00", promoCodes=[typed])}
    )
    assert used["data"]["recordPurchase"]["userErrors"] == []
    again = await gateway.gql(
        token, PURCHASE, {"input": purchase(bob.member_number, "5.00", promoCodes=[code])}
    )
    recorded = again["data"]["recordPurchase"]
    assert recorded["pointsEarned"] == 5 and recorded["transaction"] is not None
    assert [(e["code"], e["field"]) for e in recorded["userErrors"]] == [("PROMO_CODE_USED", "promoCodes[0]")]


async def test_another_partners_promotion_is_forbidden(db, gateway):
    mine, theirs = await make_partner(db), await make_partner(db)
    token = await gateway.partner_token(mine)
    promo = to_global_id("Promotion", await promotion(db, theirs))
    body = await gateway.gql(token, GENERATE, {"input": {"promotionId": promo, "count": 1}})
    assert body["data"] is None or body["data"]["generatePromoCodes"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    listed = await gateway.gql(token, BATCHES, {"p": promo})
    assert [e["extensions"]["code"] for e in listed["errors"]] == ["FORBIDDEN"]


async def test_a_token_without_rules_write_is_forbidden(db, gateway):
    shop = await make_partner(db)
    token = await gateway.partner_token(shop, scope="points:earn")
    promo = to_global_id("Promotion", await promotion(db, shop))
    body = await gateway.gql(token, GENERATE, {"input": {"promotionId": promo, "count": 1}})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_bad_input_is_user_errors(db, gateway):
    shop = await make_partner(db)
    token = await gateway.partner_token(shop)
    promo = to_global_id("Promotion", await promotion(db, shop))
    body = await gateway.gql(
        token, GENERATE, {"input": {"promotionId": promo, "count": 100_001, "prefix": "SUMMER"}}
    )
    answer = body["data"]["generatePromoCodes"]
    assert answer["batch"] is None
    assert sorted((e["code"], e["field"]) for e in answer["userErrors"]) == [
        ("INVALID", "count"),
        ("INVALID", "prefix"),
    ]
    unknown = await gateway.gql(
        token, GENERATE, {"input": {"promotionId": to_global_id("Promotion", 10**12), "count": 1}}
    )
    assert [(e["code"], e["field"]) for e in unknown["data"]["generatePromoCodes"]["userErrors"]] == [
        ("PROMOTION_NOT_FOUND", "promotionId")
    ]
    wrong_type = await gateway.gql(token, GENERATE, {"input": {"promotionId": "nonsense", "count": 1}})
    assert [e["field"] for e in wrong_type["data"]["generatePromoCodes"]["userErrors"]] == ["promotionId"]


async def test_an_admin_generates_codes_for_a_coalition_promotion(db, gateway, admin_token):
    promo = to_global_id("Promotion", await promotion(db, None))
    body = await gateway.gql(admin_token, GENERATE, {"input": {"promotionId": promo, "count": 2}})
    answer = body["data"]["generatePromoCodes"]
    assert answer["userErrors"] == [] and len(answer["codes"]) == 2
