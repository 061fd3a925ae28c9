"""A member's mail settings through the gateway: language and per-kind opt-outs in
updateMemberSettings and Me.settings (opted in by default), and the language at enrolment."""

from __future__ import annotations

from tests.conftest import Gateway, member_token
from tests.factories import make_partner
from tests.notifications.conftest import member_with_mail

SETTINGS = (
    "settings { requireCodeToSpend language"
    " notifications { tierChanges expiringPoints rewardVouchers transfersReceived } }"
)
UPDATE = (
    "mutation($input: UpdateMemberSettingsInput!) { updateMemberSettings(input: $input) {"
    f" {SETTINGS} userErrors {{ code field }} }} }}"
)
ALL_ON = {"tierChanges": True, "expiringPoints": True, "rewardVouchers": True, "transfersReceived": True}


async def test_opt_outs_and_language_change_and_show(gateway: Gateway, db) -> None:
    member, _ = await member_with_mail(db, await make_partner(db))
    token = await member_token(db, member.id)
    body = await gateway.gql(token, f"{{ me {{ {SETTINGS} }} }}")
    assert body["data"]["me"]["settings"] == {
        "requireCodeToSpend": False,
        "language": None,
        "notifications": ALL_ON,
    }, "every kind of mail is on by default"

    body = await gateway.gql(
        token,
        UPDATE,
        {"input": {"language": "FR-be", "notifications": {"expiringPoints": False, "tierChanges": False}}},
    )
    expected = {
        "requireCodeToSpend": False,
        "language": "fr-BE",
        "notifications": {**ALL_ON, "expiringPoints": False, "tierChanges": False},
    }
    assert body["data"]["updateMemberSettings"] == {"settings": expected, "userErrors": []}
    # One left out stays as it is; one given again turns back on.
    body = await gateway.gql(token, UPDATE, {"input": {"notifications": {"tierChanges": True}}})
    expected["notifications"]["tierChanges"] = True
    assert body["data"]["updateMemberSettings"]["settings"] == expected
    assert (await gateway.gql(token, f"{{ me {{ {SETTINGS} }} }}"))["data"]["me"]["settings"] == expected


async def test_a_language_that_is_no_language_tag_is_invalid(gateway: Gateway, db) -> None:
    member, _ = await member_with_mail(db, await make_partner(db))
    token = await member_token(db, member.id)
    for bad in ("français", "f", "en_US", "x" * 40):
        body = await gateway.gql(token, UPDATE, {"input": {"language": bad}})
        assert body["data"]["updateMemberSettings"] == {
            "settings": None,
            "userErrors": [{"code": "INVALID", "field": "language"}],
        }, bad
    # An empty `notifications` changes nothing: still nothing to change.
    body = await gateway.gql(token, UPDATE, {"input": {"notifications": {}}})
    assert body["data"]["updateMemberSettings"]["userErrors"] == [
        {"code": "REQUIRED", "field": "requireCodeToSpend"}
    ]


async def test_enrolment_sets_the_language_of_a_new_member_not_a_members_own(gateway: Gateway, db) -> None:
    cafe, shop = await make_partner(db), await make_partner(db)
    enroll = (
        "mutation($input: EnrollMemberInput!) { enrollMember(input: $input) {"
        " member { id memberNumber } userErrors { code field } } }"
    )
    body = await gateway.gql(
        await gateway.partner_token(cafe), enroll, {"input": {"partnerCustomerRef": "c-1", "language": "nl"}}
    )
    number = body["data"]["enrollMember"]["member"]["memberNumber"]
    from services.members import service as members

    member = await members.find_member(db, cafe.principal, number)
    assert member is not None
    token = await member_token(db, member.id)
    assert (await gateway.gql(token, "{ me { settings { language } } }"))["data"]["me"]["settings"] == {
        "language": "nl"
    }
    await gateway.gql(token, UPDATE, {"input": {"language": "fr"}})
    body = await gateway.gql(
        await gateway.partner_token(shop),
        enroll,
        {"input": {"partnerCustomerRef": "s-1", "memberNumber": number, "language": "en"}},
    )
    assert body["data"]["enrollMember"]["userErrors"] == []
    assert (await gateway.gql(token, "{ me { settings { language } } }"))["data"]["me"]["settings"] == {
        "language": "fr"
    }, "linking elsewhere keeps the member's own choice"
    body = await gateway.gql(
        await gateway.partner_token(shop), enroll, {"input": {"partnerCustomerRef": "s-2", "language": "??"}}
    )
    assert body["data"]["enrollMember"]["userErrors"] == [{"code": "INVALID", "field": "language"}]
