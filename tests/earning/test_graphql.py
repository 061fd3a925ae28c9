"""Earning over GraphQL: rules managed by their partner (or an admin), purchases with lines and
their breakdown, the same breakdown on the transaction, and previewEarn == recordPurchase."""

from __future__ import annotations

import random

from shared.ids import to_global_id
from tests.factories import enroll, make_partner, unique

CREATE_RULE = """
mutation($input: CreateEarnRuleInput!) {
  createEarnRule(input: $input) { rule { id name kind multiplier } userErrors { code field message } }
}"""
RULES = "query($p: ID) { earnRules(partnerId: $p) { id name kind archived } }"
UPDATE_RULE = """
mutation($input: UpdateEarnRuleInput!) {
  updateEarnRule(input: $input) { rule { id name multiplier } userErrors { code field message } }
}"""
PURCHASE = """
mutation($input: RecordPurchaseInput!) {
  recordPurchase(input: $input) {
    transaction { id points }
    pointsEarned
    earnBreakdown { rule { id name } promotion { id name } lines { sku } points }
    userErrors { code field message }
  }
}"""
PREVIEW = """
query($input: RecordPurchaseInput!) {
  previewEarn(input: $input) {
    points earnBreakdown { rule { id name } promotion { id name } lines { sku } points }
  }
}"""
HISTORY = """
query($n: String!) {
  member(memberNumber: $n) {
    transactions(first: 5) {
      edges {
        node { kind points earnBreakdown { rule { id name } promotion { id name } lines { sku } points } }
      }
    }
  }
}"""
REVERSE = """
mutation($input: ReversePurchaseInput!) {
  reversePurchase(input: $input) { reversal { points refunded { amount } } userErrors { code field } }
}"""


def money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def purchase(member_number: str, amount: str, lines=None, **extra) -> dict:
    return {
        "idempotencyKey": unique("key"),
        "memberNumber": member_number,
        "orderId": unique("order"),
        "amount": money(amount),
        **({"lines": lines} if lines is not None else {}),
        **extra,
    }


async def test_rules_purchases_breakdown_and_history(db, gateway):
    shop = await make_partner(db, earn_rate="1")
    token = await gateway.partner_token(shop)
    member = await enroll(db, shop)
    created = await gateway.gql(
        token, CREATE_RULE, {"input": {"name": "coffee x2", "category": "coffee", "multiplier": "2"}}
    )
    rule = created["data"]["createEarnRule"]["rule"]
    assert rule["kind"] == "CATEGORY" and created["data"]["createEarnRule"]["userErrors"] == []
    lines = [
        {"sku": "latte", "category": "coffee", "quantity": 2, "unitPrice": money("3.50")},
        {"sku": "bun", "category": "bakery", "amount": money("2.90")},
    ]
    body = await gateway.gql(
        token, PURCHASE, {"input": purchase(member.member_number, "9.90", lines, channel="STORE")}
    )
    answer = body["data"]["recordPurchase"]
    assert answer["userErrors"] == [] and answer["pointsEarned"] == 16  # floor(7.00 x 2 + 2.90)
    assert answer["earnBreakdown"] == [
        {
            "rule": {"id": rule["id"], "name": "coffee x2"},
            "promotion": None,
            "lines": [{"sku": "latte"}],
            "points": 14,
        },
        {"rule": None, "promotion": None, "lines": [{"sku": "bun"}], "points": 2},
    ]
    history = await gateway.gql(token, HISTORY, {"n": member.member_number})
    node = history["data"]["member"]["transactions"]["edges"][0]["node"]
    assert node["earnBreakdown"] == answer["earnBreakdown"]
    # A rename is a new version: the purchase's breakdown keeps the name it was earned under.
    await gateway.gql(token, UPDATE_RULE, {"input": {"ruleId": rule["id"], "name": "coffee double"}})
    again = await gateway.gql(token, HISTORY, {"n": member.member_number})
    assert (
        again["data"]["member"]["transactions"]["edges"][0]["node"]["earnBreakdown"][0]["rule"]["name"]
        == "coffee x2"
    )
    listed = await gateway.gql(token, RULES, {})
    assert [r["name"] for r in listed["data"]["earnRules"]] == ["coffee double"]


async def test_amount_mismatch_and_promo_codes_over_graphql(db, gateway):
    shop = await make_partner(db)
    token = await gateway.partner_token(shop)
    member = await enroll(db, shop)
    bad = await gateway.gql(
        token,
        PURCHASE,
        {"input": purchase(member.member_number, "5.00", [{"sku": "a", "amount": money("4.00")}])},
    )
    assert bad["data"]["recordPurchase"]["transaction"] is None
    assert [(e["code"], e["field"]) for e in bad["data"]["recordPurchase"]["userErrors"]] == [
        ("AMOUNT_MISMATCH", "amount")
    ]
    coded = await gateway.gql(
        token, PURCHASE, {"input": purchase(member.member_number, "5.00", promoCodes=["NOPE"])}
    )
    answer = coded["data"]["recordPurchase"]
    assert answer["pointsEarned"] == 5 and answer["transaction"] is not None
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
        ("PROMO_CODE_INVALID", "promoCodes[0]")
    ]


async def test_tenancy_of_rules(db, gateway, admin_token):
    mine, theirs = await make_partner(db), await make_partner(db)
    my_token, their_token = await gateway.partner_token(mine), await gateway.partner_token(theirs)
    other = to_global_id("Partner", theirs.id)
    unknown = to_global_id("Partner", 10**9)
    for partner_id in (other, unknown):
        body = await gateway.gql(
            my_token, CREATE_RULE, {"input": {"partnerId": partner_id, "name": "x", "minSpend": "1"}}
        )
        assert [(e["code"], e["field"]) for e in body["data"]["createEarnRule"]["userErrors"]] == [
            ("PARTNER_NOT_FOUND", "partnerId")
        ]
    by_admin = await gateway.gql(
        admin_token, CREATE_RULE, {"input": {"partnerId": other, "name": "cap", "capPerPurchase": 100}}
    )
    rule_id = by_admin["data"]["createEarnRule"]["rule"]["id"]
    theirs_listed = await gateway.gql(their_token, RULES, {})
    assert [r["id"] for r in theirs_listed["data"]["earnRules"]] == [rule_id]
    assert (await gateway.gql(my_token, RULES, {}))["data"]["earnRules"] == []
    hijack = await gateway.gql(my_token, UPDATE_RULE, {"input": {"ruleId": rule_id, "name": "mine now"}})
    missing = await gateway.gql(
        my_token, UPDATE_RULE, {"input": {"ruleId": to_global_id("EarnRule", 10**9), "name": "x"}}
    )
    assert hijack["data"]["updateEarnRule"]["userErrors"] == missing["data"]["updateEarnRule"]["userErrors"]
    assert hijack["data"]["updateEarnRule"]["userErrors"][0]["code"] == "RULE_NOT_FOUND"
    no_scope = await gateway.partner_token(mine, "points:earn")
    refused = await gateway.gql(no_scope, CREATE_RULE, {"input": {"name": "x", "minSpend": "1"}})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_preview_equals_record_for_random_baskets(db, gateway):
    shop = await make_partner(db, earn_rate="1.5", earn_rounding="HALF_UP")
    token = await gateway.partner_token(shop)
    for terms in (
        {"name": "coffee x2", "category": "coffee", "multiplier": "2"},
        {"name": "no cards", "category": "giftcard", "multiplier": "0"},
        {"name": "3 per bun", "sku": "bun", "pointsPerUnit": "3"},
        {"name": "latte x1.25", "sku": "latte", "multiplier": "1.25"},
        {"name": "min 2", "minSpend": "2"},
        {"name": "cap 60", "capPerPurchase": 60},
        {"name": "150 a day", "capPerMemberDay": 150},
    ):
        created = await gateway.gql(token, CREATE_RULE, {"input": terms})
        assert created["data"]["createEarnRule"]["userErrors"] == [], terms
    member = await enroll(db, shop)
    rng = random.Random(11)
    catalogue = [
        ("latte", "coffee"),
        ("espresso", "coffee"),
        ("bun", "bakery"),
        ("card", "giftcard"),
        ("mug", None),
    ]
    for _ in range(25):
        chosen = rng.sample(catalogue, rng.randint(1, len(catalogue)))
        lines = []
        for sku, category in chosen:
            cents = rng.randint(1, 2500)
            lines.append(
                {
                    "sku": sku,
                    "category": category,
                    "quantity": rng.randint(1, 4),
                    "amount": money(f"{cents / 100:.2f}"),
                }
            )
        amount = f"{sum(int(line['amount']['amount'].replace('.', '')) for line in lines) / 100:.2f}"
        variables = {"input": purchase(member.member_number, amount, lines)}
        preview = (await gateway.gql(token, PREVIEW, variables))["data"]["previewEarn"]
        recorded = (await gateway.gql(token, PURCHASE, variables))["data"]["recordPurchase"]
        assert recorded["userErrors"] == []
        assert (preview["points"], preview["earnBreakdown"]) == (
            recorded["pointsEarned"],
            recorded["earnBreakdown"],
        )
        assert sum(item["points"] for item in recorded["earnBreakdown"]) == recorded["pointsEarned"]


async def test_preview_refuses_what_record_refuses(db, gateway):
    shop = await make_partner(db)
    token = await gateway.partner_token(shop)
    body = await gateway.gql(
        token, PREVIEW, {"input": purchase("000000000000", "5.00", [{"sku": "a", "amount": money("4.00")}])}
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    codes = {e["code"] for e in body["errors"][0]["extensions"]["userErrors"]}
    assert "AMOUNT_MISMATCH" in codes


async def test_reverse_by_line_over_graphql(db, gateway):
    shop = await make_partner(db)
    token = await gateway.partner_token(shop)
    member = await enroll(db, shop)
    variables = {
        "input": purchase(
            member.member_number, "12.00", [{"sku": "a", "quantity": 2, "amount": money("12.00")}]
        )
    }
    await gateway.gql(token, PURCHASE, variables)
    refund = {
        "idempotencyKey": unique("key"),
        "orderId": variables["input"]["orderId"],
        "lines": [{"sku": "a", "quantity": 1}],
    }
    body = await gateway.gql(token, REVERSE, {"input": refund})
    assert body["data"]["reversePurchase"]["reversal"] == {"points": 6, "refunded": {"amount": "6.00"}}
    both = {**refund, "idempotencyKey": unique("key"), "amount": money("1.00")}
    refused = await gateway.gql(token, REVERSE, {"input": both})
    assert refused["data"]["reversePurchase"]["userErrors"] == [{"code": "INVALID", "field": "lines"}]
