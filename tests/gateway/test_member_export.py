"""A member's data export holds what every service keeps on them, not only the ledger's: the promo
codes they used (earning), their activities and survey answers, gifts and referrals (engagement),
the mail sent to them (notifications), and their tier; of other members only what the member
already knows."""

from __future__ import annotations

import json

from services.engagement.activity_models import ActivityKind
from services.ledger import erasure
from shared import sql
from shared.database import Database
from tests.conftest import Gateway, member_token
from tests.earning import promo_helpers
from tests.engagement.activity_helpers import make_activity, record
from tests.engagement.referral_helpers import code_of, enroll_referred
from tests.engagement.test_transfers import give
from tests.factories import ADMIN, earn, enroll, make_partner, unique
from tests.notifications.conftest import dispatch_all

EXPORT = "{ exportMyData }"


async def test_the_export_gathers_every_services_part_and_nothing_of_other_members(
    db: Database, gateway: Gateway
) -> None:
    cafe = await make_partner(db)
    friend = await enroll(db, cafe, email=f"{unique('friend')}@example.org")
    member = await enroll_referred(db, cafe, await code_of(db, friend), email=f"{unique('me')}@example.org")
    newcomer = await enroll_referred(db, cafe, await code_of(db, member))
    other = await enroll(db, cafe)
    leaver = await enroll(db, cafe)

    promotion = await promo_helpers.promotion(db, cafe, name="Welcome code")
    [code] = await promo_helpers.codes(db, cafe, promotion)
    order = unique("order")
    assert (
        await earn(db, cafe, member.member_number, "100", order_id=order, promo_codes=(code,))
    ).errors == []
    survey = await make_activity(db, cafe, kind=ActivityKind.SURVEY, points=20)
    answer = {"npsScore": 9, "comment": "lovely flat white"}
    assert (await record(db, cafe, member.member_number, survey, data=answer)).errors == []
    # Someone else's answer to the same survey stays theirs.
    assert (
        await record(db, cafe, other.member_number, survey, data={"npsScore": 2, "comment": "cold"})
    ).errors == []

    assert (await give(db, member, other.member_number, 30, message="for your coffee")).errors == []
    assert (await earn(db, cafe, leaver.member_number, "50")).errors == []
    assert (await give(db, leaver, member.member_number, 15, message="thanks!")).errors == []
    await erasure.erase_member(db, ADMIN, leaver.member_number)
    await dispatch_all(db)  # the gift received is mail to send the member

    token = await member_token(db, member.id)
    answered = await gateway.gql(token, EXPORT)
    assert "errors" not in answered, answered
    doc = answered["data"]["exportMyData"]

    assert [(u["code"], u["orderId"], u["partner"]["name"], u["releasedAt"]) for u in doc["promoCodes"]] == [
        (code, order, cafe.name, None)
    ]
    [activity] = doc["activities"]
    assert activity["activity"] == {"code": survey.code, "name": survey.name, "kind": "SURVEY"}
    assert (activity["partner"]["name"], activity["points"], activity["npsScore"]) == (cafe.name, 20, 9)
    assert activity["comment"] == "lovely flat white" and activity["data"]["npsScore"] == 9
    gifts = [(t["direction"], t["counterpart"], t["points"], t["message"]) for t in doc["transfers"]]
    # The erased giver's number is gone from the receiver's export too.
    assert gifts == [("SENT", other.member_number, 30, "for your coffee"), ("RECEIVED", None, 15, "thanks!")]
    referrals = doc["referrals"]
    assert referrals["code"] == await code_of(db, member)
    assert referrals["referredAt"] is not None
    assert [(r["bonusPoints"], r["rewardedAt"]) for r in referrals["referred"]] == [(None, None)]
    assert [(m["kind"], m["status"]) for m in doc["mails"]] == [("TRANSFER_RECEIVED", "PENDING")]
    async with sql.connection(db) as conn:  # tiers are coalition-wide: other tests may have made some
        tier = await conn.fetchval(
            "SELECT t.name FROM member_tiers mt JOIN tiers t ON t.id = mt.tier_id WHERE mt.member_id = $1",
            member.id,
        )
    assert (doc["tier"] or {}).get("name") == tier

    dumped = json.dumps(doc)
    # Who referred the member, and whom they referred, are those members' to tell.
    assert friend.member_number not in dumped and newcomer.member_number not in dumped
    assert "cold" not in dumped and leaver.member_number not in dumped


async def test_the_download_and_the_query_answer_the_same_sections(db: Database, gateway: Gateway) -> None:
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    other = await enroll(db, cafe)
    assert (await earn(db, cafe, member.member_number, "40")).errors == []
    assert (await give(db, member, other.member_number, 10)).errors == []
    token = await member_token(db, member.id)
    download = await gateway.client.get("/account/export.json", headers={"Authorization": f"Bearer {token}"})
    assert download.status_code == 200, download.text
    graphql = (await gateway.gql(token, EXPORT))["data"]["exportMyData"]
    doc = download.json()
    assert [t["points"] for t in doc["transfers"]] == [10]
    assert {k: v for k, v in doc.items() if k != "exportedAt"} == {
        k: v for k, v in graphql.items() if k != "exportedAt"
    }
    assert {"promoCodes", "activities", "transfers", "referrals", "mails", "tier"} <= doc.keys()
