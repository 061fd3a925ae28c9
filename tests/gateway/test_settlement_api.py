"""Settlement over GraphQL: an admin runs and finalizes; a partner reads only its statement."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlparse

from services.gateway.app import MAX_BODY_BYTES
from shared import clock
from shared.ids import from_global_id, to_global_id
from tests.factories import earn, enroll, link, redeem

# An admin reads a run's nets and instructions; every line of every statement is over the cost
# limit for a coalition of the size it plans for (the export has them), a partner's own are not.
RUN = """mutation($input: RunSettlementInput!) { runSettlement(input: $input) {
  run { id status contentHash statements { partner { id name } net { amount currency }
    instruction { direction amount { amount currency } } } }
  userErrors { code field message } } }"""
FINALIZE = """mutation($input: FinalizeSettlementInput!) { finalizeSettlement(input: $input) {
  run { id status } userErrors { code field message } } }"""
MINE = """{ myStatements(first: 5) { edges { node { id status statements { partner { name }
  net { amount } lines { kind amount { amount } } } } } } }"""


async def _trading_day(db, cafe, airline, days_ago: int) -> tuple[dict[str, str], str]:
    """A day, `days_ago` back, with a 100-point purchase at the cafe (order till-1) and, when an
    airline is given, 50 of them spent there (order gate-9), both at 03:00: the day as a period
    input, and that instant as ISO text."""
    member = await enroll(db, cafe)
    if airline is not None:
        await link(db, airline, member)
    start = clock.now().replace(microsecond=0) - timedelta(days=days_ago)
    clock.set_clock(lambda: start + timedelta(hours=3))
    try:
        await earn(db, cafe, member.member_number, "100", order_id="till-1")
        if airline is not None:
            assert (await redeem(db, airline, member.member_number, 50, order_id="gate-9")).errors == []
    finally:
        clock.set_clock(None)
    period = {"periodStart": start.isoformat(), "periodEnd": (start + timedelta(days=1)).isoformat()}
    return period, (start + timedelta(hours=3)).isoformat()


async def test_admin_runs_and_partner_reads_its_statement(gateway, db, admin_token, partner_pair):
    cafe, cafe_token, airline, _ = partner_pair
    period, _ = await _trading_day(db, cafe, airline, days_ago=7)
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
    assert sum(Decimal(s["net"]["amount"]) for s in ran["run"]["statements"]) == 0

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


SUBMIT = """mutation($input: SubmitReconciliationInput!) { submitReconciliation(input: $input) {
  reconciliation { id runId partner { name } matched missingInLedger missingInPartnerFile pointsMismatch
    openDisputes items(disputesOnly: true) { edges { node { id orderId kind status ledgerPoints
      partnerPoints isDispute } } } }
  userErrors { code field message } } }"""
RESOLVE = """mutation($input: ResolveDisputeInput!) { resolveDispute(input: $input) {
  item { status resolutionNote resolvedBy } userErrors { code field message } } }"""
RUN_EXPORT = """query($id: ID!) { settlementRun(id: $id) { status exportUrl(format: CSV)
  json: exportUrl(format: JSON) reconciliations { partner { name } openDisputes }
  statements { partner { name } } } }"""


async def test_reconcile_resolve_finalize_and_download_over_http(gateway, db, admin_token, partner_pair):
    cafe, cafe_token, airline, airline_token = partner_pair
    period, at = await _trading_day(db, cafe, airline, days_ago=40)
    run = (await gateway.gql(admin_token, RUN, {"input": period}))["data"]["runSettlement"]["run"]

    # The cafe reads its provisional statement and reconciles against it.
    draft = (await gateway.gql(cafe_token, RUN_EXPORT, {"id": run["id"]}))["data"]["settlementRun"]
    assert draft["status"] == "DRAFT" and [s["partner"]["name"] for s in draft["statements"]] == [cafe.name]
    csv_text = f"orderId,kind,points,occurredAt\ntill-1,EARN,90,{at}\n"
    sent = await gateway.gql(cafe_token, SUBMIT, {"input": {"runId": run["id"], "csv": csv_text}})
    report = sent["data"]["submitReconciliation"]
    assert report["userErrors"] == []
    assert report["reconciliation"]["partner"]["name"] == cafe.name
    assert report["reconciliation"]["pointsMismatch"] == 1 and report["reconciliation"]["openDisputes"] == 1
    (item,) = [e["node"] for e in report["reconciliation"]["items"]["edges"]]
    assert (item["orderId"], item["ledgerPoints"], item["partnerPoints"]) == ("till-1", 100, 90)

    bad = await gateway.gql(
        cafe_token, SUBMIT, {"input": {"runId": run["id"], "csv": csv_text + "x,EARN,-1,now\n"}}
    )
    errors = bad["data"]["submitReconciliation"]["userErrors"]
    assert [e["message"].split(":")[0] for e in errors] == ["line 3", "line 3"]

    # Relay's node() finds both, for whoever may see them: not the airline's to see the cafe's file.
    node = """query($id: ID!) { node(id: $id) { id ... on Reconciliation { pointsMismatch }
      ... on SettlementRun { status } } }"""
    rec_id = report["reconciliation"]["id"]
    assert (await gateway.gql(admin_token, node, {"id": rec_id}))["data"]["node"]["pointsMismatch"] == 1
    assert (await gateway.gql(airline_token, node, {"id": rec_id}))["data"]["node"] is None
    assert (await gateway.gql(airline_token, node, {"id": run["id"]}))["data"]["node"]["status"] == "DRAFT"
    assert (await gateway.gql(cafe_token, node, {"id": rec_id}))["data"]["node"]["id"] == rec_id

    # The airline may not resolve; the admin can't finalize over the open dispute until it does.
    denied = await gateway.gql(airline_token, RESOLVE, {"input": {"itemId": item["id"], "note": "x"}})
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    held = await gateway.gql(admin_token, FINALIZE, {"input": {"runId": run["id"]}})
    assert [e["code"] for e in held["data"]["finalizeSettlement"]["userErrors"]] == ["OPEN_DISPUTES"]
    done = await gateway.gql(
        admin_token, RESOLVE, {"input": {"itemId": item["id"], "note": "10 points were a staff discount"}}
    )
    assert done["data"]["resolveDispute"]["item"]["resolutionNote"].startswith("10 points")
    final = await gateway.gql(admin_token, FINALIZE, {"input": {"runId": run["id"]}})
    assert final["data"]["finalizeSettlement"]["run"]["status"] == "FINALIZED"

    # Downloads: the admin gets every statement; the cafe its own; nobody without a token.
    urls = (await gateway.gql(admin_token, RUN_EXPORT, {"id": run["id"]}))["data"]["settlementRun"]
    assert urls["reconciliations"] == [{"partner": {"name": cafe.name}, "openDisputes": 0}]
    path = urlparse(urls["exportUrl"]).path
    assert path.endswith(".csv") and urlparse(urls["json"]).path.endswith(".json")
    whole = await gateway.client.get(path, headers={"Authorization": f"Bearer {admin_token}"})
    assert whole.status_code == 200 and whole.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(whole.text)))
    assert {r["partner_id"] for r in rows} >= {str(cafe.id), str(airline.id), "coalition"}
    assert sum(Decimal(r["amount"]) for r in rows) == 0
    own = await gateway.client.get(path, headers={"Authorization": f"Bearer {cafe_token}"})
    assert {r["partner_id"] for r in csv.DictReader(io.StringIO(own.text))} == {str(cafe.id)}
    as_json = await gateway.client.get(
        urlparse(urls["json"]).path, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert as_json.json()["content_hash"] == run["contentHash"]
    assert (await gateway.client.get(path)).status_code == 401
    missing = path.replace(f"/runs/{path.split('/')[3]}/", "/runs/999999999/")
    assert (
        await gateway.client.get(missing, headers={"Authorization": f"Bearer {admin_token}"})
    ).status_code == 404


async def test_a_big_reconciliation_file_goes_over_plain_http(gateway, db, admin_token, partner_pair):
    cafe, cafe_token, _, airline_token = partner_pair
    period, at = await _trading_day(db, cafe, None, days_ago=60)
    run = (await gateway.gql(admin_token, RUN, {"input": period}))["data"]["runSettlement"]["run"]
    run_id = from_global_id(run["id"], "SettlementRun")[1]
    walk_ins = MAX_BODY_BYTES // 40 + 1_000  # each row is about 45 bytes
    rows = [f"till-1,EARN,100,{at}"] + [f"walk-in-{i},EARN,1,{at}" for i in range(walk_ins)]
    body = ("orderId,kind,points,occurredAt\n" + "\n".join(rows) + "\n").encode()
    assert len(body) > MAX_BODY_BYTES  # more than a GraphQL request may carry

    url = f"/settlement/runs/{run_id}/reconciliation"
    headers = {"Authorization": f"Bearer {cafe_token}", "Content-Type": "text/csv"}
    sent = await gateway.client.post(url, content=body, headers=headers)
    assert sent.status_code == 200, sent.text
    summary = sent.json()
    assert summary["rows"] == walk_ins + 1 and summary["partner_id"] == cafe.id
    assert summary["counts"] == {
        "MATCHED": 1,
        "MISSING_IN_LEDGER": walk_ins,
        "MISSING_IN_PARTNER_FILE": 0,
        "POINTS_MISMATCH": 0,
    }
    assert len(summary["disputes"]) == 100 and summary["open_disputes"] == walk_ins

    bad = await gateway.client.post(
        url, content=b"orderId,kind,points,occurredAt\nx,EARN,0,soon\n", headers=headers
    )
    assert bad.status_code == 400
    assert [e["message"].split(":")[0] for e in bad.json()["userErrors"]] == ["line 2", "line 2"]
    as_airline = {"Authorization": f"Bearer {airline_token}", "Content-Type": "text/csv"}
    theirs = await gateway.client.post(
        f"{url}?partnerId={to_global_id('Partner', cafe.id)}", content=body, headers=as_airline
    )
    assert theirs.status_code == 403
    for_cafe = await gateway.client.post(
        f"{url}?partnerId={to_global_id('Partner', cafe.id)}",
        content=b"orderId,kind,points,occurredAt\n",
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert for_cafe.status_code == 200 and for_cafe.json()["counts"]["MISSING_IN_PARTNER_FILE"] == 1
    assert (await gateway.client.post(url, content=body)).status_code == 401
