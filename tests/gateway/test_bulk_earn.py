"""recordPurchases through the gateway: a full batch of 1,000 passes the body and cost limits, each
purchase gets its own answer in input order, and a batch over the limit is a userError naming
`purchases`."""

from __future__ import annotations

import json
import uuid

from services.gateway.app import MAX_BODY_BYTES
from shared.ids import new_member_number
from tests.earning.helpers import rule
from tests.factories import balance, enroll, make_partner

RECORD_PURCHASES = """
mutation($input: RecordPurchasesInput!) {
  recordPurchases(input: $input) {
    results {
      transaction { id points status kind orderId }
      pointsEarned
      userErrors { code field message }
    }
    userErrors { code field message }
  }
}"""


def item(member_number: str, amount: str, **extra: object) -> dict[str, object]:
    return {
        # Long keys and order ids, as a till that sends UUIDs with a prefix does.
        "idempotencyKey": f"till-7/batch-2026-12-03/{uuid.uuid4()}/{uuid.uuid4()}",
        "memberNumber": member_number,
        "orderId": f"receipt-{uuid.uuid4()}-{uuid.uuid4()}",
        "amount": {"amount": amount, "currency": "EUR"},
        "occurredAt": "2026-12-01T09:30:00Z",
        **extra,
    }


async def test_a_full_batch_of_a_thousand_is_accepted_and_answered_in_order(gateway, db):
    partner = await make_partner(db)
    people = [await enroll(db, partner) for _ in range(10)]
    purchases = [item(people[i % 10].member_number, str(1 + i % 7)) for i in range(1000)]
    body = json.dumps({"query": RECORD_PURCHASES, "variables": {"input": {"purchases": purchases}}})
    # Past the old 256 KiB limit, within the new one.
    assert 256 * 1024 < len(body) < MAX_BODY_BYTES
    token = await gateway.partner_token(partner, "points:earn")
    answer = await gateway.gql(token, RECORD_PURCHASES, {"input": {"purchases": purchases}})
    assert "errors" not in answer, answer.get("errors")
    payload = answer["data"]["recordPurchases"]
    assert payload["userErrors"] == []
    results = payload["results"]
    assert [r["transaction"]["orderId"] for r in results] == [p["orderId"] for p in purchases]
    assert [r["pointsEarned"] for r in results] == [1 + i % 7 for i in range(1000)]
    assert all(r["userErrors"] == [] and r["transaction"]["kind"] == "EARN" for r in results)
    assert len({r["transaction"]["id"] for r in results}) == 1000
    for i, person in enumerate(people):
        expected = sum(1 + j % 7 for j in range(i, 1000, 10))
        assert (await balance(db, person.id)).available == expected


async def test_one_bad_purchase_fails_only_itself(gateway, db):
    partner = await make_partner(db)
    member = await enroll(db, partner)
    purchases = [
        item(member.member_number, "10"),
        item(member.member_number, "-1"),  # bad amount
        item(new_member_number(), "10"),  # nobody has this number
        {**item(member.member_number, "5"), "amount": {"amount": "5", "currency": "USD"}},
        item(member.member_number, "3"),
    ]
    token = await gateway.partner_token(partner, "points:earn")
    answer = await gateway.gql(token, RECORD_PURCHASES, {"input": {"purchases": purchases}})
    results = answer["data"]["recordPurchases"]["results"]
    assert [[(e["code"], e["field"]) for e in r["userErrors"]] for r in results] == [
        [],
        [("INVALID_AMOUNT", "amount.amount")],
        [("MEMBER_NOT_FOUND", "memberNumber")],
        [("CURRENCY_MISMATCH", "amount.currency")],
        [],
    ]
    assert [r["pointsEarned"] for r in results] == [10, None, None, None, 3]
    assert [r["transaction"] is None for r in results] == [False, True, True, True, False]
    assert (await balance(db, member.id)).available == 13
    # The same request again: the same answers, nothing moves.
    again = await gateway.gql(token, RECORD_PURCHASES, {"input": {"purchases": purchases}})
    assert again["data"]["recordPurchases"]["results"] == results
    assert (await balance(db, member.id)).available == 13


async def test_more_than_a_thousand_is_a_user_error_naming_purchases(gateway, db):
    partner = await make_partner(db)
    member = await enroll(db, partner)
    purchases = [item(member.member_number, "1") for _ in range(1001)]
    token = await gateway.partner_token(partner, "points:earn")
    answer = await gateway.gql(token, RECORD_PURCHASES, {"input": {"purchases": purchases}})
    payload = answer["data"]["recordPurchases"]
    assert payload["results"] == []
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("BATCH_TOO_LARGE", "purchases")]
    assert (await balance(db, member.id)).available == 0


RECORD_PURCHASES_WITH_BREAKDOWN = """
mutation($input: RecordPurchasesInput!) {
  recordPurchases(input: $input) {
    results {
      pointsEarned
      earnBreakdown { rule { name } lines { sku } points }
      userErrors { code field }
    }
    userErrors { code field }
  }
}"""
RECORD_PURCHASE = """
mutation($input: RecordPurchaseInput!) {
  recordPurchase(input: $input) {
    pointsEarned
    earnBreakdown { rule { name } lines { sku } points }
    userErrors { code field }
  }
}"""


async def test_lines_promo_codes_and_channel_earn_under_the_rules_with_a_breakdown_each(gateway, db):
    partner = await make_partner(db, earn_rate="1")
    await rule(db, partner, "double coffee", sku="COFFEE", multiplier="2")
    member = await enroll(db, partner)
    coffee = [
        {"sku": "COFFEE", "amount": {"amount": "3.40", "currency": "EUR"}},
        {"sku": "CAKE", "quantity": 1, "unitPrice": {"amount": "2.95", "currency": "EUR"}},
    ]
    now = {"occurredAt": None}  # the rule is in force from now: item()'s fixed instant predates it
    purchases = [
        item(member.member_number, "6.35", lines=coffee, channel="STORE", **now),
        item(member.member_number, "12.90", promoCodes=["WINTER"], **now),
        item(member.member_number, "7.00", lines=coffee, **now),  # not the lines' sum
    ]
    token = await gateway.partner_token(partner, "points:earn")
    answer = await gateway.gql(token, RECORD_PURCHASES_WITH_BREAKDOWN, {"input": {"purchases": purchases}})
    assert "errors" not in answer, answer.get("errors")
    results = answer["data"]["recordPurchases"]["results"]
    assert [r["pointsEarned"] for r in results] == [9, 12, None]
    assert results[0]["earnBreakdown"] == [
        {"rule": {"name": "double coffee"}, "lines": [{"sku": "COFFEE"}], "points": 6},
        {"rule": None, "lines": [{"sku": "CAKE"}], "points": 3},
    ]
    assert [[(e["code"], e["field"]) for e in r["userErrors"]] for r in results] == [
        [],
        [("PROMO_CODE_INVALID", "promoCodes[0]")],
        [("AMOUNT_MISMATCH", "amount")],
    ]
    # A retry of the first through recordPurchase replays it: same key, same input, same answer.
    single = await gateway.gql(token, RECORD_PURCHASE, {"input": purchases[0]})
    assert single["data"]["recordPurchase"] == results[0]
    assert (await balance(db, member.id)).available == 9 + 12
