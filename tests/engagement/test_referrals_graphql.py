"""Referrals through the gateway: Me.referralCode for the member, enrollMember(referralCode) for a
partner, Me.referrals once the bonus is paid."""

from __future__ import annotations

import pytest

from shared.settings import get_settings
from tests.conftest import member_token
from tests.engagement.referral_helpers import pay
from tests.factories import earn, enroll, make_partner, unique

ENROLL = """
mutation($input: EnrollMemberInput!) {
  enrollMember(input: $input) { member { memberNumber } userErrors { code field message } }
}"""


@pytest.fixture(autouse=True)
def bonus_points(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REFERRAL_BONUS_POINTS", "300")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("REFERRAL_BONUS_POINTS")
    get_settings.cache_clear()


async def test_enroll_with_a_referral_code_and_read_it_back(gateway, db) -> None:
    cafe = await make_partner(db)
    referrer = await enroll(db, cafe)
    token = await member_token(db, referrer.id)
    me = await gateway.gql(token, "{ me { referralCode referrals { referred rewarded pointsEarned } } }")
    code = me["data"]["me"]["referralCode"]
    assert len(code) == 8
    assert me["data"]["me"]["referrals"] == {"referred": 0, "rewarded": 0, "pointsEarned": 0}

    partner = await gateway.partner_token(cafe)
    bad = await gateway.gql(
        partner, ENROLL, {"input": {"partnerCustomerRef": unique("ref"), "referralCode": "00000000"}}
    )
    assert bad["data"]["enrollMember"]["member"] is None
    [error] = bad["data"]["enrollMember"]["userErrors"]
    assert (error["code"], error["field"]) == ("REFERRAL_CODE_INVALID", "referralCode")

    body = await gateway.gql(
        partner,
        ENROLL,
        {
            "input": {
                "partnerCustomerRef": unique("ref"),
                "email": f"{unique('f')}@example.com",
                "referralCode": code,
            }
        },
    )
    assert body["data"]["enrollMember"]["userErrors"] == []
    number = body["data"]["enrollMember"]["member"]["memberNumber"]
    assert (await earn(db, cafe, number, "20")).errors == []
    await pay(db)

    again = await gateway.gql(token, "{ me { referralCode referrals { referred rewarded pointsEarned } } }")
    assert again["data"]["me"]["referralCode"] == code
    assert again["data"]["me"]["referrals"] == {"referred": 1, "rewarded": 1, "pointsEarned": 300}
    history = await gateway.gql(token, "{ me { transactions(first: 5) { edges { node { kind points } } } } }")
    kinds = [e["node"]["kind"] for e in history["data"]["me"]["transactions"]["edges"]]
    assert kinds == ["REFERRAL"]
    # Self-referral through the gateway: the referrer linked at another partner with their own code.
    shop = await make_partner(db)
    own = await gateway.gql(
        await gateway.partner_token(shop),
        ENROLL,
        {
            "input": {
                "partnerCustomerRef": unique("ref"),
                "memberNumber": referrer.member_number,
                "referralCode": code,
            }
        },
    )
    assert own["data"]["enrollMember"]["userErrors"][0]["code"] == "REFERRAL_SELF"
