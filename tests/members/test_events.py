"""The members service's outbox events: member.enrolled, member.linked, member.unlinked, each in
the transaction that changes the link (docs/events.md)."""

from __future__ import annotations

import asyncio

import pytest

from shared.errors import DomainError
from shared.ids import to_global_id
from tests.conftest import member_token
from tests.factories import earn, enroll, make_partner, outbox, unique

MEMBER_EVENTS = ("member.enrolled", "member.linked", "member.unlinked")
UNLINK = """mutation($id: ID!) { unlinkPartner(input: {partnerId: $id}) { userErrors { code } } }"""


def pid(partner) -> str:
    return to_global_id("Partner", partner.id)


async def member_events(db, member) -> list[dict]:
    return await outbox(db, member_id=member.id, types=MEMBER_EVENTS)


async def test_a_new_member_is_enrolled_and_linked_once(db):
    cafe = await make_partner(db)
    ref = unique("cust")
    member = await enroll(db, cafe, ref)
    assert (await enroll(db, cafe, ref)).id == member.id  # the same enrolment again: nothing new
    assert await member_events(db, member) == [
        {
            "type": "member.enrolled",
            "member_id": member.id,
            "partner_ids": [cafe.id],
            "data": {"memberNumber": member.member_number, "partnerId": pid(cafe), "partnerCustomerRef": ref},
        },
        {
            "type": "member.linked",
            "member_id": member.id,
            "partner_ids": [cafe.id],
            "data": {"memberNumber": member.member_number, "partnerId": pid(cafe), "how": "ENROLLED"},
        },
    ]


async def test_concurrent_enrolments_of_one_customer_write_one_pair_of_events(db):
    """The losers of the race roll back, their events with them."""
    cafe = await make_partner(db)
    ref = unique("cust")
    views = await asyncio.gather(*[enroll(db, cafe, ref) for _ in range(8)])
    [member] = {v.id: v for v in views}.values()
    assert [e["type"] for e in await member_events(db, member)] == ["member.enrolled", "member.linked"]


async def test_an_existing_member_enrolled_at_another_partner(db):
    cafe, airline = await make_partner(db), await make_partner(db)
    member = await enroll(db, cafe)
    ref = unique("flyer")
    await enroll(db, airline, ref, member_number=member.member_number)
    events = (await member_events(db, member))[2:]
    assert [(e["type"], e["partner_ids"]) for e in events] == [
        ("member.enrolled", [airline.id]),
        ("member.linked", [airline.id]),
    ]
    assert events[0]["data"]["partnerCustomerRef"] == ref
    with pytest.raises(DomainError) as refused:  # refused: nothing written
        await enroll(db, airline, unique("other-ref"), member_number=member.member_number)
    assert refused.value.errors[0].code == "ALREADY_ENROLLED"
    assert len(await member_events(db, member)) == 4


async def test_a_member_known_from_the_till_then_enrolled_is_not_linked_twice(db):
    cafe, airline = await make_partner(db), await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, airline, member.member_number, "10")
    await enroll(db, airline, unique("flyer"), member_number=member.member_number)
    events = (await member_events(db, member))[2:]
    assert [(e["type"], e["data"].get("how")) for e in events] == [
        ("member.linked", "CARD_PRESENTED"),
        ("member.enrolled", None),
    ]


async def test_unlinking_writes_member_unlinked_and_the_card_links_again(gateway, db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    token = await member_token(db, member.id)
    body = await gateway.gql(token, UNLINK, {"id": pid(cafe)})
    assert body["data"]["unlinkPartner"]["userErrors"] == []
    again = await gateway.gql(token, UNLINK, {"id": pid(cafe)})
    assert again["data"]["unlinkPartner"]["userErrors"] == [{"code": "NOT_LINKED"}]
    await earn(db, cafe, member.member_number, "10")
    events = (await member_events(db, member))[2:]
    assert events == [
        {
            "type": "member.unlinked",
            "member_id": member.id,
            "partner_ids": [cafe.id],
            "data": {"memberNumber": member.member_number, "partnerId": pid(cafe)},
        },
        {
            "type": "member.linked",
            "member_id": member.id,
            "partner_ids": [cafe.id],
            "data": {"memberNumber": member.member_number, "partnerId": pid(cafe), "how": "CARD_PRESENTED"},
        },
    ]
