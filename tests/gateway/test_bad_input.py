"""Bad input is a named error: every case here once reached a 500 or a masked "Internal error.".

Each answer must name the field (a `userErrors` entry, a GraphQL error whose message names the
variable's path, or a 4xx for the HTTP routes) and say what is wrong in words a client's engineer
reads, not Python's."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from shared import clock
from shared.errors import Validator
from shared.ids import to_global_id
from tests.factories import earn, enroll, unique
from tests.gateway import queries as q

PYTHON_WORDING = ("invalid literal", "isoformat", "Internal error", "Traceback", "decimal.", "int()")

NODE = "query($id: ID!) { node(id: $id) { id } }"
SETTLEMENT_RUN = "query($id: ID!) { settlementRun(id: $id) { id } }"
REWARDS_AFTER = "query($a: String) { rewards(first: 5, after: $a) { edges { cursor } } }"
EXPIRING = "query($within: Duration!) { pointsExpiringSoon(within: $within) { edges { cursor } } }"
RUN = """mutation($input: RunSettlementInput!) { runSettlement(input: $input) {
  run { id } userErrors { code field message } } }"""
SUBMIT = """mutation($input: SubmitReconciliationInput!) { submitReconciliation(input: $input) {
  reconciliation { id } userErrors { code field message } } }"""


async def _raw(gateway, token: str, query: str, variables: dict) -> dict:
    """Sent as JSON escapes (`\\udc80`), the way a client's encoder writes a lone surrogate
    (httpx refuses to encode one as UTF-8)."""
    response = await gateway.client.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def _in_words(text: str) -> None:
    for phrase in PYTHON_WORDING:
        assert phrase not in text, text


@pytest.fixture
async def draft_run(gateway, db, admin_token, partner_pair):
    """A DRAFT run over yesterday, with one purchase at the cafe: (cafe token, run id, an instant
    inside the period)."""
    cafe, cafe_token, _, _ = partner_pair
    member = await enroll(db, cafe)
    start = clock.now().replace(microsecond=0) - timedelta(days=2)
    clock.set_clock(lambda: start + timedelta(hours=3))
    try:
        await earn(db, cafe, member.member_number, "10", order_id="till-1")
    finally:
        clock.set_clock(None)
    period = {"periodStart": start.isoformat(), "periodEnd": (start + timedelta(days=1)).isoformat()}
    ran = (await gateway.gql(admin_token, RUN, {"input": period}))["data"]["runSettlement"]
    assert ran["userErrors"] == []
    return cafe_token, ran["run"]["id"], (start + timedelta(hours=3)).isoformat()


BAD_POINTS = ["²", "99999999999999999999", "\u0661\u0662", " 5 ", "+5", "5.0", "0x10"]


@pytest.mark.parametrize("points", BAD_POINTS)
async def test_reconciliation_points_are_ascii_digits_within_bigint(gateway, draft_run, points):
    token, run_id, at = draft_run
    text = f'orderId,kind,points,occurredAt\ntill-1,EARN,"{points}",{at}\n'
    body = await gateway.gql(token, SUBMIT, {"input": {"runId": run_id, "csv": text}})
    errors = body["data"]["submitReconciliation"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_ROW", "csv")], errors
    assert errors[0]["message"].startswith("line 2: points:"), errors

    http = await _upload(gateway, token, run_id, text)
    assert http.status_code == 400 and http.json()["userErrors"] == errors


async def _upload(gateway, token: str, run_id: str, text: str | bytes):
    local = base64.urlsafe_b64decode(run_id + "=" * (-len(run_id) % 4)).decode().partition(":")[2]
    return await gateway.client.post(
        f"/settlement/runs/{local}/reconciliation",
        content=text.encode() if isinstance(text, str) else text,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
    )


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("till-\x001,EARN,10,{at}", "orderId"),  # PostgreSQL text cannot hold NUL
        ("till-1,EA\x00RN,10,{at}", "kind"),
        ("x" * 140_000 + ",EARN,10,{at}", "row"),  # past the csv module's 131,072-character field
        ('"' + "y" * 140_000 + '",EARN,10,{at}', "row"),
        ("till-\u202e1,EARN,10,{at}", "orderId"),  # a bidi override hides what the id says
    ],
)
async def test_reconciliation_text_that_cannot_be_stored_is_a_row_error(gateway, draft_run, row, column):
    token, run_id, at = draft_run
    text = "orderId,kind,points,occurredAt\n" + row.format(at=at) + "\n"
    body = await gateway.gql(token, SUBMIT, {"input": {"runId": run_id, "csv": text}})
    errors = body["data"]["submitReconciliation"]["userErrors"]
    assert errors and all(e["field"] == "csv" for e in errors), errors
    assert errors[0]["message"].startswith(f"line 2: {column}:"), errors
    http = await _upload(gateway, token, run_id, text)
    assert http.status_code == 400, http.text
    assert http.json()["userErrors"] == errors


async def test_ids_out_of_range_are_not_found(gateway, admin_token, partner_pair):
    _, cafe_token, _, _ = partner_pair
    auth = {"Authorization": f"Bearer {admin_token}"}
    huge = "99999999999999999999999"
    for path in (f"/settlement/runs/{huge}/export.csv", f"/settlement/runs/{2**63}/export.json"):
        response = await gateway.client.get(path, headers=auth)
        assert response.status_code == 404, (path, response.status_code, response.text)
    upload = await gateway.client.post(
        f"/settlement/runs/{huge}/reconciliation",
        content=b"orderId,kind,points,occurredAt\n",
        headers={"Authorization": f"Bearer {cafe_token}"},
    )
    assert upload.status_code == 404

    node = await gateway.gql(
        cafe_token, "query($id: ID!) { node(id: $id) { id } }", {"id": to_global_id("Reward", 10**24)}
    )
    assert node == {"data": {"node": None}}
    run = await gateway.gql(
        admin_token,
        "query($id: ID!) { settlementRun(id: $id) { id } }",
        {"id": to_global_id("SettlementRun", 10**24)},
    )
    assert "errors" not in run or all(e["extensions"]["code"] != "INTERNAL" for e in run["errors"]), run


@pytest.mark.parametrize("raw", ["c:" + "9" * 25, "c:-" + "9" * 25, "c:" + str(2**63)])
async def test_cursor_out_of_range_is_invalid_cursor(gateway, partner_pair, raw):
    _, cafe_token, _, _ = partner_pair
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    body = await gateway.gql(
        cafe_token, "query($a: String) { rewards(first: 5, after: $a) { edges { cursor } } }", {"a": cursor}
    )
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert error["extensions"]["userErrors"][0]["field"] == "after"
    _in_words(error["message"])


async def test_text_that_postgres_cannot_store_is_refused_by_field(gateway, partner_pair):
    _, cafe_token, _, _ = partner_pair
    enrolled = await gateway.gql(
        cafe_token, q.ENROLL, {"input": {"partnerCustomerRef": unique("c"), "email": "a\x00b@example.com"}}
    )
    assert [(e["code"], e["field"]) for e in enrolled["data"]["enrollMember"]["userErrors"]] == [
        ("INVALID_EMAIL", "email")
    ]
    ref = await _raw(gateway, cafe_token, q.ENROLL, {"input": {"partnerCustomerRef": "c\ud800"}})
    assert [e["field"] for e in ref["data"]["enrollMember"]["userErrors"]] == ["partnerCustomerRef"]


@pytest.mark.parametrize(
    "email",
    ["plain", "a@b", "a@@example.com", "a b@example.com", "a@example..com", "a@exa mple.com", "a@-x.com"],
)
async def test_emails_are_validated_as_emails(gateway, partner_pair, email):
    _, cafe_token, _, _ = partner_pair
    body = await gateway.gql(
        cafe_token, q.ENROLL, {"input": {"partnerCustomerRef": unique("c"), "email": email}}
    )
    errors = body["data"]["enrollMember"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_EMAIL", "email")], (email, errors)


async def test_order_id_with_a_lone_surrogate_is_a_user_error(gateway, db, partner_pair):
    cafe, cafe_token, _, _ = partner_pair
    member = await enroll(db, cafe)
    variables = _purchase(member.member_number, "10.00")
    variables["input"]["orderId"] = "till-\udc80"
    body = await _raw(gateway, cafe_token, q.PURCHASE, variables)
    errors = body["data"]["recordPurchase"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID", "orderId")], errors


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x1b", "\x7f", "\x85", "\x9f", "\u202a", "\u202e", "\u2066", "\u2069", "\ud800", "\udfff"],
)
def test_validator_text_refuses_controls_bidi_overrides_and_surrogates(char):
    v = Validator()
    v.text(f"name{char}x", "name", max_length=50)
    assert [(e.code, e.field) for e in v.errors] == [("INVALID", "name")]
    clean = Validator()
    clean.text("Café Ünïcødé 東京 🙂 \u200d", "name", max_length=50)
    assert clean.errors == []


def _purchase(member_number: str, amount: object) -> dict:
    return {
        "input": {
            "idempotencyKey": unique("k"),
            "memberNumber": member_number,
            "orderId": unique("o"),
            "amount": {"amount": amount, "currency": "EUR"},
        }
    }


@pytest.mark.parametrize(
    "amount", ["\u0661\u0662", " 5 ", "5 ", "1e3", "NaN", "Infinity", "0x10", "", "\u0661.\u0665"]
)
async def test_decimal_accepts_ascii_digits_only(gateway, db, partner_pair, amount):
    cafe, cafe_token, _, _ = partner_pair
    member = await enroll(db, cafe)
    body = await gateway.gql(cafe_token, q.PURCHASE, _purchase(member.member_number, amount))
    assert body.get("data") is None, body
    (error,) = body["errors"]
    assert ".amount.amount" in error["message"] and "decimal number" in error["message"], error
    _in_words(error["message"])


async def test_json_floats_for_money_are_refused_with_a_hint(gateway, db, partner_pair):
    cafe, cafe_token, _, _ = partner_pair
    member = await enroll(db, cafe)
    body = await gateway.gql(cafe_token, q.PURCHASE, _purchase(member.member_number, 12.9))
    (error,) = body["errors"]
    assert ".amount.amount" in error["message"] and 'as a string, like "12.90"' in error["message"]
    whole = await gateway.gql(cafe_token, q.PURCHASE, _purchase(member.member_number, 12))
    assert whole["data"]["recordPurchase"]["userErrors"] == [], whole


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("points", "12x", "Points must be a whole number"),
        ("points", 2**63, "Points must be between"),
        ("points", "\u0661\u0662", "Points must be a whole number"),
        ("points", 1.5, "Points must be a whole number"),
        ("occurredAt", "yesterday", "is not an ISO 8601 date and time"),
        ("occurredAt", "2026-13-01T00:00:00Z", "is not an ISO 8601 date and time"),
        ("occurredAt", 20261101, "is not an ISO 8601 date and time"),
        ("occurredAt", "9999-12-31T23:00:00-05:00", "must lie between the years"),
        ("within", "P1M", "ISO 8601 duration"),
        ("within", "P999999999D", "ten years"),
        ("within", "P999999999W", "ten years"),
        ("within", "P99999999999D", "ISO 8601 duration"),
        ("within", "P\u0663D", "ISO 8601 duration"),
    ],
)
async def test_scalar_errors_say_what_is_wrong_in_words(gateway, db, partner_pair, field, value, words):
    cafe, cafe_token, _, _ = partner_pair
    member = await enroll(db, cafe)
    if field == "within":
        document, variables = EXPIRING, {"within": value}
    elif field == "points":
        document = q.REDEEM
        variables = {
            "input": {
                "idempotencyKey": unique("k"),
                "memberNumber": member.member_number,
                "orderId": unique("o"),
                "points": value,
            }
        }
    else:
        document, variables = q.PURCHASE, _purchase(member.member_number, "1.00")
        variables["input"][field] = value
    body = await gateway.gql(cafe_token, document, variables)
    (error,) = body["errors"]
    assert words in error["message"] and field in error["message"], error
    _in_words(error["message"])


CREATE_REWARD = """mutation($input: CreateRewardInput!) { createReward(input: $input) {
  reward { id } userErrors { code field message } } }"""


async def test_instants_without_an_offset_are_user_errors_everywhere(gateway, partner_pair):
    """Found by the fuzz test: a naive validUntil was compared with an aware validFrom (a 500)."""
    _, cafe_token, _, _ = partner_pair
    reward = {"name": "Flat white", "pointsCost": 25}
    for dates in (
        {"validUntil": "2030-01-01T00:00:00"},
        {"validFrom": "2029-01-01T00:00:00", "validUntil": "2030-01-01T00:00:00Z"},
        {"validFrom": "2029-01-01T00:00:00Z", "validUntil": "2030-01-01T00:00:00"},
    ):
        body = await gateway.gql(cafe_token, CREATE_REWARD, {"input": {**reward, **dates}})
        errors = body["data"]["createReward"]["userErrors"]
        naive = [k for k, v in dates.items() if not v.endswith("Z")]
        assert [(e["code"], e["field"]) for e in errors] == [("INVALID", f) for f in naive], errors
