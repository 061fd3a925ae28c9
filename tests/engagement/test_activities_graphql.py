"""Activities through the gateway, with real tokens: a partner defines and records its own, the
member sees the points in their history, NPS sums surveys up; members give a birth date."""

from __future__ import annotations

from datetime import timedelta

from shared import clock
from shared.ids import from_global_id
from tests.conftest import member_token
from tests.factories import enroll, make_partner, unique

CREATE = """
mutation($input: CreateActivityInput!) {
  createActivity(input: $input) {
    activity { id code kind points perMemberLimit cooldown byCoalition partner { name } }
    userErrors { code field message }
  }
}"""
RECORD = """
mutation($input: RecordActivityInput!) {
  recordActivity(input: $input) {
    pointsEarned transaction { id kind status points orderId }
    userErrors { code field message }
  }
}"""
NPS = """
query($from: DateTime!, $to: DateTime!) {
  npsScore(from: $from, to: $to) { score responses promoters passives detractors }
}"""


async def test_a_partner_defines_records_and_the_member_sees_it(gateway, db) -> None:
    shop = await make_partner(db)
    member = await enroll(db, shop)
    token = await gateway.partner_token(shop)
    code = unique("nps").upper()

    created = await gateway.gql(
        token,
        CREATE,
        {"input": {"code": code, "name": "Tell us", "kind": "SURVEY", "points": 30, "cooldown": "P7D"}},
    )
    activity = created["data"]["createActivity"]["activity"]
    assert created["data"]["createActivity"]["userErrors"] == []
    assert activity["kind"] == "SURVEY" and activity["cooldown"] == "PT604800S"
    assert activity["byCoalition"] is False and activity["partner"]["name"] == shop.name

    at = (clock.now() - timedelta(minutes=5)).isoformat()
    answer = {"npsScore": 9, "comment": "lovely"}
    variables = {
        "input": {
            "idempotencyKey": unique("k"),
            "memberNumber": member.member_number,
            "activityCode": code.lower(),
            "occurredAt": at,
            "data": answer,
        }
    }
    recorded = (await gateway.gql(token, RECORD, variables))["data"]["recordActivity"]
    assert recorded["userErrors"] == [] and recorded["pointsEarned"] == 30
    assert recorded["transaction"]["kind"] == "ACTIVITY" and recorded["transaction"]["status"] == "AVAILABLE"
    assert recorded["transaction"]["orderId"] == f"activity:{code}"
    replay = (await gateway.gql(token, RECORD, variables))["data"]["recordActivity"]
    assert replay["transaction"]["id"] == recorded["transaction"]["id"]
    variables["input"]["idempotencyKey"] = unique("k")
    cooled = (await gateway.gql(token, RECORD, variables))["data"]["recordActivity"]
    assert [(e["code"], e["field"]) for e in cooled["userErrors"]] == [("ACTIVITY_COOLDOWN", "occurredAt")]

    mine = await member_token(db, member.id)
    me = await gateway.gql(
        mine, "{ me { balance { available } transactions(first: 5) { edges { node { kind points } } } } }"
    )
    assert "errors" not in me, me
    assert me["data"]["me"]["balance"]["available"] == 30
    nodes = [e["node"] for e in me["data"]["me"]["transactions"]["edges"]]
    assert nodes == [{"kind": "ACTIVITY", "points": 30}]

    window = {"from": (clock.now() - timedelta(hours=1)).isoformat(), "to": clock.now().isoformat()}
    nps = (await gateway.gql(token, NPS, window))["data"]["npsScore"]
    assert nps == {"score": 100, "responses": 1, "promoters": 1, "passives": 0, "detractors": 0}

    listed = await gateway.gql(token, "{ activities { id code archivedAt } }")
    assert [a["code"] for a in listed["data"]["activities"]] == [code]
    archived = await gateway.gql(
        token,
        "mutation($id: ID!) { archiveActivity(input: {activityId: $id}) { activity { archivedAt } userErrors"
        " { code } } }",
        {"id": activity["id"]},
    )
    assert archived["data"]["archiveActivity"]["activity"]["archivedAt"] is not None


async def test_who_may_call_what(gateway, db) -> None:
    shop = await make_partner(db)
    member = await enroll(db, shop)
    no_scope = await gateway.partner_token(shop, scope="points:earn")
    denied = await gateway.gql(
        no_scope, CREATE, {"input": {"code": "X", "name": "x", "kind": "REVIEW", "points": 1}}
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    mine = await member_token(db, member.id)
    nps = '{ npsScore(from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z") { score } }'
    for query in ("{ activities { id } }", nps):
        body = await gateway.gql(mine, query)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bad = await gateway.gql(
        await gateway.partner_token(shop),
        CREATE,
        {"input": {"code": "BDAY", "name": "x", "kind": "BIRTHDAY", "points": 5, "perMemberLimit": 1}},
    )
    assert [(e["code"], e["field"]) for e in bad["data"]["createActivity"]["userErrors"]] == [
        ("INVALID", "perMemberLimit")
    ]


async def test_a_birth_date_is_given_once(gateway, db) -> None:
    shop = await make_partner(db)
    token = await gateway.partner_token(shop)
    enrolled = await gateway.gql(
        token,
        "mutation($input: EnrollMemberInput!) { enrollMember(input: $input) { member { id memberNumber }"
        " userErrors { code field } } }",
        {"input": {"partnerCustomerRef": unique("ref"), "birthDate": "1990-05-17"}},
    )
    assert enrolled["data"]["enrollMember"]["userErrors"] == []
    number = enrolled["data"]["enrollMember"]["member"]["memberNumber"]
    future = await gateway.gql(
        token,
        "mutation($input: EnrollMemberInput!) { enrollMember(input: $input) { userErrors { code field } } }",
        {"input": {"partnerCustomerRef": unique("ref"), "birthDate": "2999-01-01"}},
    )
    assert future["data"]["enrollMember"]["userErrors"] == [{"code": "INVALID", "field": "birthDate"}]

    member_id = from_global_id(enrolled["data"]["enrollMember"]["member"]["id"], "Member")[1]
    mine = await member_token(db, member_id)
    me = await gateway.gql(mine, "{ me { settings { birthDate } } }")
    assert me["data"]["me"]["settings"]["birthDate"] == "1990-05-17"
    change = await gateway.gql(
        mine,
        'mutation { updateMemberSettings(input: {birthDate: "1991-01-01"}) { settings { birthDate }'
        " userErrors { code field } } }",
    )
    assert change["data"]["updateMemberSettings"]["userErrors"] == [{"code": "INVALID", "field": "birthDate"}]
    same = await gateway.gql(
        mine,
        'mutation { updateMemberSettings(input: {birthDate: "1990-05-17"}) { settings { birthDate }'
        " userErrors { code } } }",
    )
    assert same["data"]["updateMemberSettings"] == {"settings": {"birthDate": "1990-05-17"}, "userErrors": []}
    undated = await enroll(db, shop)
    theirs = await member_token(db, undated.id)
    given = await gateway.gql(
        theirs,
        'mutation { updateMemberSettings(input: {birthDate: "1985-02-28"}) { settings { birthDate } } }',
    )
    assert given["data"]["updateMemberSettings"]["settings"]["birthDate"] == "1985-02-28"
    assert number != undated.member_number
