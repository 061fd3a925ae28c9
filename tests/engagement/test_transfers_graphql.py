"""Gifts and charity through the gateway with real member tokens: transferPoints, donatePoints,
charities; both members see the move in their history; a partner token may do neither."""

from __future__ import annotations

from services.partners.models import PartnerKind
from shared.ids import to_global_id
from tests.conftest import member_token
from tests.factories import earn, enroll, make_partner, unique

TRANSFER = """
mutation($input: TransferPointsInput!) {
  transferPoints(input: $input) { transfer { id points transactionId } userErrors { code field message } }
}"""
DONATE = """
mutation($input: DonatePointsInput!) {
  donatePoints(input: $input) {
    donation { id points value { amount currency } charity { name kind } } userErrors { code field }
  }
}"""
HISTORY = "{ me { balance { available } transactions(first: 5) { edges { node { kind points } } } } }"


async def test_give_and_donate_through_the_gateway(gateway, db) -> None:
    cafe = await make_partner(db)
    charity = await make_partner(db, kind=PartnerKind.CHARITY, redeem_price="0.01")
    ann, bob = await enroll(db, cafe), await enroll(db, cafe)
    assert (await earn(db, cafe, ann.member_number, "100")).errors == []
    ann_token, bob_token = await member_token(db, ann.id), await member_token(db, bob.id)

    given = await gateway.gql(
        ann_token,
        TRANSFER,
        {
            "input": {
                "idempotencyKey": unique("k"),
                "toMemberNumber": bob.member_number,
                "points": 40,
                "message": "for the bus",
            }
        },
    )
    assert given["data"]["transferPoints"]["userErrors"] == []
    assert given["data"]["transferPoints"]["transfer"]["points"] == 40
    bob_sees = await gateway.gql(bob_token, HISTORY)
    assert bob_sees["data"]["me"]["balance"]["available"] == 40
    assert [e["node"] for e in bob_sees["data"]["me"]["transactions"]["edges"]] == [
        {"kind": "TRANSFER_IN", "points": 40}
    ]

    listed = await gateway.gql(ann_token, "{ charities { id name kind } }")
    assert {"id": to_global_id("Partner", charity.id), "name": charity.name, "kind": "CHARITY"} in listed[
        "data"
    ]["charities"]
    donated = await gateway.gql(
        ann_token,
        DONATE,
        {
            "input": {
                "idempotencyKey": unique("k"),
                "charityId": to_global_id("Partner", charity.id),
                "points": 50,
            }
        },
    )
    donation = donated["data"]["donatePoints"]["donation"]
    assert donation["points"] == 50 and donation["value"] == {"amount": "0.50", "currency": "EUR"}
    assert donation["charity"] == {"name": charity.name, "kind": "CHARITY"}
    ann_sees = await gateway.gql(ann_token, HISTORY)
    assert ann_sees["data"]["me"]["balance"]["available"] == 10
    assert [e["node"]["kind"] for e in ann_sees["data"]["me"]["transactions"]["edges"]] == [
        "REDEEM",
        "TRANSFER_OUT",
        "EARN",
    ]
    too_much = await gateway.gql(
        ann_token,
        TRANSFER,
        {"input": {"idempotencyKey": unique("k"), "toMemberNumber": bob.member_number, "points": 11}},
    )
    assert [e["code"] for e in too_much["data"]["transferPoints"]["userErrors"]] == ["INSUFFICIENT_POINTS"]

    partner = await gateway.partner_token(cafe)
    denied = await gateway.gql(
        partner,
        TRANSFER,
        {"input": {"idempotencyKey": unique("k"), "toMemberNumber": bob.member_number, "points": 1}},
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
