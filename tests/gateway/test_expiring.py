"""Warning members before their points expire, and the admin's re-engagement list."""

from __future__ import annotations

from datetime import timedelta

from shared import clock
from tests.factories import earn, enroll, make_partner, unique

EXPIRING = """query($n: String!, $within: Duration!) {
  member(memberNumber: $n) { expiringPoints(within: $within) { points expiresAt } } }"""
SOON = """query($within: Duration!, $first: Int, $after: String) {
  pointsExpiringSoon(within: $within, first: $first, after: $after) {
    edges { node { member { memberNumber } expiresOn points } }
    pageInfo { hasNextPage endCursor } } }"""


async def test_expiring_points_lists_what_goes_soonest_first(gateway, db):
    cafe = await make_partner(db)
    token = await gateway.partner_token(cafe)
    member = await enroll(db, cafe)
    now = clock.now()
    # Points expire 24 months after the purchase: back-date two purchases to near that edge.
    await earn(db, cafe, member.member_number, "40", occurred_at=now - timedelta(days=720))
    await earn(db, cafe, member.member_number, "25", occurred_at=now - timedelta(days=700))
    await earn(db, cafe, member.member_number, "99")  # two years away
    body = await gateway.gql(token, EXPIRING, {"n": member.member_number, "within": "P30D"})
    found = body["data"]["member"]["expiringPoints"]
    assert [e["points"] for e in found] == [40, 25]
    assert found[0]["expiresAt"] < found[1]["expiresAt"]
    none_soon = await gateway.gql(token, EXPIRING, {"n": member.member_number, "within": "PT1H"})
    assert none_soon["data"]["member"]["expiringPoints"] == []
    bad = await gateway.gql(token, EXPIRING, {"n": member.member_number, "within": "P1M"})
    assert "ISO 8601 duration" in bad["errors"][0]["message"]


async def test_points_expiring_soon_pages_members_by_day(gateway, db, admin_token):
    cafe = await make_partner(db)
    now = clock.now()
    numbers = []
    for days_ago in (725, 724, 723):
        member = await enroll(db, cafe, unique("c"))
        await earn(db, cafe, member.member_number, "10", occurred_at=now - timedelta(days=days_ago))
        numbers.append(member.member_number)
    seen, after = [], None
    while True:
        page = await gateway.gql(admin_token, SOON, {"within": "P10D", "first": 2, "after": after})
        conn = page["data"]["pointsExpiringSoon"]
        seen += [(e["node"]["member"]["memberNumber"], e["node"]["expiresOn"]) for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    ours = [s for s in seen if s[0] in numbers]
    assert [n for n, _ in ours] == numbers  # soonest day first
    assert len(seen) == len(set(seen))  # pages never repeat a row
    partner_token = await gateway.partner_token(cafe)
    denied = await gateway.gql(partner_token, SOON, {"within": "P10D"})
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
