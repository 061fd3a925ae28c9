"""A member's export of their own data: everything across partners, nothing of anyone else, by
GraphQL (`exportMyData`) and as a download (`GET /account/export.json`), for the member only."""

from __future__ import annotations

import json

from services.ledger import erasure, rewards
from services.partners import catalog
from shared.database import Database
from shared.ids import to_global_id
from tests.conftest import Gateway, member_token
from tests.factories import ADMIN, authorize, earn, enroll, make_partner, redeem, unique

EXPORT = "{ exportMyData }"


async def _member_with_history(db: Database):
    cafe = await make_partner(db)
    fuel = await make_partner(db)
    ref = unique("cafe-cust")
    email = f"{unique('me')}@example.org"
    member = await enroll(db, cafe, ref=ref, email=email)
    orders = {"cafe": unique("cafe-order"), "fuel": unique("fuel-order"), "hold": unique("hold")}
    assert (await earn(db, cafe, member.member_number, "120", order_id=orders["cafe"])).errors == []
    # Presenting the card at the fuel station links the member there (CARD_PRESENTED).
    assert (await earn(db, fuel, member.member_number, "80", order_id=orders["fuel"])).errors == []
    assert (await redeem(db, fuel, member.member_number, 15)).errors == []
    assert (await authorize(db, cafe, member.member_number, 10, order_id=orders["hold"])).errors == []
    reward = await catalog.create_reward(db, cafe.principal, name="Espresso", points_cost=25)
    bought = await rewards.redeem_reward(
        db,
        cafe.principal,
        idempotency_key=unique("key"),
        member_number=member.member_number,
        reward_id=to_global_id("Reward", reward.id),
    )
    assert bought.errors == []
    # Someone else, at the same partners: none of this may show in the first member's export.
    stranger = await enroll(db, cafe, email=f"{unique('them')}@example.org")
    stranger_order = unique("stranger-order")
    assert (await earn(db, fuel, stranger.member_number, "999", order_id=stranger_order)).errors == []
    return cafe, fuel, member, ref, email, orders, bought.result["voucher_code"], stranger, stranger_order


async def test_the_export_holds_the_members_data_across_partners_and_nothing_else(
    db: Database, gateway: Gateway
) -> None:
    cafe, fuel, member, ref, email, orders, voucher, stranger, stranger_order = await _member_with_history(db)
    token = await member_token(db, member.id)
    answer = await gateway.gql(token, EXPORT)
    assert "errors" not in answer, answer
    doc = answer["data"]["exportMyData"]

    assert doc["version"] == 1
    assert doc["profile"]["memberNumber"] == member.member_number
    assert doc["profile"]["email"] == email and doc["profile"]["activated"] is False
    assert doc["profile"]["settings"] == {
        "requireCodeToSpend": False,
        "language": None,
        "notifications": {
            "tierChanges": True,
            "expiringPoints": True,
            "rewardVouchers": True,
            "transfersReceived": True,
        },
    }
    links = {(x["partner"]["name"], x["how"], x["partnerCustomerRef"]) for x in doc["links"]}
    assert links == {(cafe.name, "ENROLLED", ref), (fuel.name, "CARD_PRESENTED", None)}
    assert doc["balance"] == {"available": 120 + 80 - 15 - 25 - 10, "pending": 0, "held": 10}
    kinds = sorted((x["kind"], x["partner"]["name"], x["points"]) for x in doc["transactions"])
    assert kinds == sorted(
        [
            ("EARN", cafe.name, 120),
            ("EARN", fuel.name, 80),
            ("REDEEM", fuel.name, -15),
            ("REDEEM", cafe.name, -25),
        ]
    )
    assert {x["orderId"] for x in doc["transactions"]} >= {orders["cafe"], orders["fuel"]}
    lots = sorted((x["issuer"]["name"], x["points"], x["remaining"]) for x in doc["lots"])
    assert lots == sorted([(cafe.name, 120, 80), (fuel.name, 80, 80)])  # 40 spent first to expire
    assert [(x["orderId"], x["points"], x["status"]) for x in doc["holds"]] == [
        (orders["hold"], 10, "ACTIVE")
    ]
    assert [(x["code"], x["points"], x["cancelled"]) for x in doc["vouchers"]] == [(voucher, 25, False)]
    assert doc["debts"] == []

    dumped = json.dumps(doc)
    assert stranger.member_number not in dumped and stranger_order not in dumped


async def test_the_export_downloads_with_the_members_token_only(db: Database, gateway: Gateway) -> None:
    cafe, _, member, _, email, _, _, _, stranger_order = await _member_with_history(db)
    token = await member_token(db, member.id)
    response = await gateway.client.get("/account/export.json", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment") and member.member_number in disposition
    doc = response.json()
    assert doc["profile"]["email"] == email and len(doc["transactions"]) == 4
    assert stranger_order not in response.text
    graphql = (await gateway.gql(token, EXPORT))["data"]["exportMyData"]
    assert {k: v for k, v in doc.items() if k != "exportedAt"} == {
        k: v for k, v in graphql.items() if k != "exportedAt"
    }

    anonymous = await gateway.client.get("/account/export.json")
    assert anonymous.status_code == 401

    partner = await gateway.client.get(
        "/account/export.json", headers={"Authorization": f"Bearer {await gateway.partner_token(cafe)}"}
    )
    assert partner.status_code == 403
    assert partner.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    refused = await gateway.gql(await gateway.partner_token(cafe), EXPORT)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_erased_members_token_exports_nothing(db: Database, gateway: Gateway) -> None:
    cafe = await make_partner(db)
    member = await enroll(db, cafe, email=f"{unique('gone')}@example.org")
    token = await member_token(db, member.id)
    await erasure.erase_member(db, ADMIN, member.member_number)
    response = await gateway.client.get("/account/export.json", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401  # erasure revoked the token on every gateway
    refused = await gateway.post(token, EXPORT)
    assert (
        refused.status_code == 401 and refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    )
