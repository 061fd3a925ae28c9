"""Settlement over GraphQL: an admin runs and finalizes; a partner reads only its statement."""

from __future__ import annotations

from datetime import timedelta

from shared import clock
from tests.factories import earn, enroll, redeem

RUN = """mutation($input: RunSettlementInput!) { runSettlement(input: $input) {
  run { id status contentHash statements { partner { id name } net { amount currency }
    instruction { direction amount { amount currency } }
    lines { counterparty { name } kind points amount { amount currency } } } }
  userErrors { code field message } } }"""
FINALIZE = """mutation($input: SettlementRunInput!) { finalizeSettlement(input: $input) {
  run { id status } userErrors { code field message } } }"""
MINE = """{ myStatements(first: 5) { edges { node { id status statements { partner { name }
  net { amount } lines { kind amount { amount } } } } } } }"""


async def test_admin_runs_and_partner_reads_its_statement(gateway, db, admin_token, partner_pair):
    cafe, cafe_token, airline, _ = partner_pair
    member = await enroll(db, cafe)
    start = clock.now().replace(microsecond=0) - timedelta(days=7)
    clock.set_clock(lambda: start + timedelta(hours=12))
    try:
        await earn(db, cafe, member.member_number, "100")
        assert (await redeem(db, airline, member.member_number, 50)).errors == []
    finally:
        clock.set_clock(None)
    period = {"periodStart": start.isoformat(), "periodEnd": (start + timedelta(days=1)).isoformat()}
    denied = await gateway.gql(cafe_token, RUN, {"input": period})
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    ran = (await gateway.gql(admin_token, RUN, {"input": period}))["data"]["runSettlement"]
    assert ran["userErrors"] == [] and ran["run"]["status"] == "DRAFT"
    by_partner = {(s["partner"] or {}).get("name"): s for s in ran["run"]["statements"]}
    assert by_partner[cafe.name]["instruction"]["direction"] == "PAY_IN"
    assert by_partner[airline.name]["instruction"] == {
        "direction": "PAY_OUT",
        "amount": {"amount": "0.40", "currency": "EUR"},
    }
    assert sum(float(s["net"]["amount"]) for s in ran["run"]["statements"]) == 0

    future = {
        "periodStart": clock.now().isoformat(),
        "periodEnd": (clock.now() + timedelta(days=1)).isoformat(),
    }
    refused = (await gateway.gql(admin_token, RUN, {"input": future}))["data"]["runSettlement"]
    assert [e["code"] for e in refused["userErrors"]] == ["IN_FUTURE"]

    final = await gateway.gql(admin_token, FINALIZE, {"input": {"runId": ran["run"]["id"]}})
    assert final["data"]["finalizeSettlement"]["run"]["status"] == "FINALIZED"
    mine = (await gateway.gql(cafe_token, MINE))["data"]["myStatements"]["edges"]
    ours = [e["node"] for e in mine if e["node"]["id"] == ran["run"]["id"]]
    assert len(ours) == 1
    assert [s["partner"]["name"] for s in ours[0]["statements"]] == [cafe.name]
    assert [
        (x["kind"], x["amount"]["amount"])
        for x in ours[0]["statements"][0]["lines"]
        if x["kind"] == "REDEMPTION_PAYABLE"
    ] == [("REDEMPTION_PAYABLE", "-0.40")]
