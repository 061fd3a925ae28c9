"""membersToReengage through the gateway: members with no earn or redemption for a while and
points to spend; admins see every member (with their email), a partner only its linked members,
inactivity measured at the partner; pages by cursor; bad arguments are userErrors."""

from __future__ import annotations

from datetime import timedelta

from services.gateway.schema import build_schema
from services.ledger import erasure
from shared import clock
from shared.graphql_types import Context
from tests.conftest import Gateway
from tests.factories import ADMIN, earn, enroll, link, make_partner, redeem, unique
from tests.sql_statements import sql_statements

QUERY = """query($inactiveFor: Duration!, $minPoints: Points, $first: Int, $after: String) {
  membersToReengage(inactiveFor: $inactiveFor, minPoints: $minPoints, first: $first, after: $after) {
    edges { cursor node { memberNumber email partnerCustomerRef availablePoints lastActivityAt } }
    pageInfo { hasNextPage endCursor } } }"""


async def listed(gateway: Gateway, token: str, min_points: int, first: int = 100) -> dict[str, dict]:
    """Every member on every page, by number."""
    found: dict[str, dict] = {}
    after = None
    for _ in range(200):
        body = await gateway.gql(
            token, QUERY, {"inactiveFor": "P30D", "minPoints": min_points, "first": first, "after": after}
        )
        assert body.get("errors") is None, body
        page = body["data"]["membersToReengage"]
        for edge in page["edges"]:
            found[edge["node"]["memberNumber"]] = edge["node"]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("too many pages")


async def test_inactive_members_with_points_per_audience(gateway: Gateway, db, admin_token: str) -> None:
    cafe, shop = await make_partner(db), await make_partner(db)
    long_ago = clock.now() - timedelta(days=100)
    # Idle: earned at the café 100 days ago, nothing since.
    idle = await enroll(db, cafe, ref="idle", email=f"{unique('idle')}@example.com")
    await earn(db, cafe, idle.member_number, "7000", occurred_at=long_ago)
    # Busy: the same, and a redemption at the café yesterday.
    busy = await enroll(db, cafe, ref="busy")
    await earn(db, cafe, busy.member_number, "7000", occurred_at=long_ago)
    assert (await redeem(db, cafe, busy.member_number, 10)).errors == []
    # Elsewhere: idle at the café, but earned at the shop just now.
    elsewhere = await enroll(db, cafe, ref="elsewhere")
    await earn(db, cafe, elsewhere.member_number, "7000", occurred_at=long_ago)
    await earn(db, shop, elsewhere.member_number, "5")  # card presented: linked to the shop
    # Poor: idle, but with fewer points than the campaign asks.
    poor = await enroll(db, cafe, ref="poor")
    await earn(db, cafe, poor.member_number, "60", occurred_at=long_ago)
    # The shop's own: idle at the shop; the café does not know them.
    theirs = await enroll(db, shop, ref="theirs")
    await earn(db, shop, theirs.member_number, "7000", occurred_at=long_ago)
    # Erased: never listed.
    gone = await enroll(db, cafe, ref="gone")
    await earn(db, cafe, gone.member_number, "7000", occurred_at=long_ago)
    await erasure.erase_member(db, ADMIN, gone.member_number)
    ours = {m.member_number for m in (idle, busy, elsewhere, poor, theirs, gone)}

    cafe_sees = await listed(gateway, await gateway.partner_token(cafe), 6000)
    assert set(cafe_sees) == {idle.member_number, elsewhere.member_number}
    assert cafe_sees[idle.member_number]["email"] is None, "partners do not read members' emails"
    assert cafe_sees[idle.member_number]["partnerCustomerRef"] == "idle"
    assert cafe_sees[idle.member_number]["availablePoints"] == 7000
    assert cafe_sees[elsewhere.member_number]["availablePoints"] == 7005
    assert cafe_sees[elsewhere.member_number]["lastActivityAt"][:10] == long_ago.date().isoformat(), (
        "the café sees its own last activity, not the shop's"
    )

    shop_sees = await listed(gateway, await gateway.partner_token(shop), 6000)
    assert set(shop_sees) == {theirs.member_number}

    admin_sees = {n: m for n, m in (await listed(gateway, admin_token, 6000)).items() if n in ours}
    assert set(admin_sees) == {idle.member_number, theirs.member_number}
    assert admin_sees[idle.member_number]["email"] == idle_email(admin_sees, idle.member_number)
    assert admin_sees[idle.member_number]["partnerCustomerRef"] is None
    # A lower bar lets the poor member in.
    assert poor.member_number in await listed(gateway, await gateway.partner_token(cafe), 50)


def idle_email(seen: dict[str, dict], number: str) -> str:
    email = seen[number]["email"]
    assert email and email.startswith("idle-"), email
    return email


async def test_pages_follow_the_cursor_in_one_statement_each(gateway: Gateway, db) -> None:
    cafe = await make_partner(db)
    long_ago = clock.now() - timedelta(days=60)
    numbers = []
    for n in range(5):
        member = await enroll(db, cafe, ref=f"m{n}")
        await earn(db, cafe, member.member_number, "100", occurred_at=long_ago)
        numbers.append(member.member_number)
    other = await make_partner(db)
    await link(db, other, member)
    schema = build_schema()
    async with sql_statements(db) as statements:
        result = await schema.execute(
            QUERY,
            variable_values={"inactiveFor": "P30D", "first": 2},
            context_value=Context(principal=cafe.principal, db=db),
        )
    assert result.errors is None, result.errors
    page = result.data["membersToReengage"]
    assert [e["node"]["memberNumber"] for e in page["edges"]] == numbers[:2]
    assert page["pageInfo"]["hasNextPage"]
    assert len(statements) == 1, statements
    rest = await listed(gateway, await gateway.partner_token(cafe), 0, first=2)
    assert list(rest) == numbers


async def test_bad_arguments_and_callers(gateway: Gateway, db, admin_token: str) -> None:
    cafe = await make_partner(db)
    token = await gateway.partner_token(cafe)
    body = await gateway.gql(token, QUERY, {"inactiveFor": "PT0S", "minPoints": -1})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert {e["field"] for e in error["extensions"]["userErrors"]} == {"inactiveFor", "minPoints"}
    body = await gateway.gql(token, QUERY, {"inactiveFor": "P1D", "after": "nonsense"})
    assert body["errors"][0]["extensions"]["userErrors"][0]["code"] == "INVALID_CURSOR"
    # A partner token without members:read is refused.
    narrow = await gateway.partner_token(cafe, scope="points:earn")
    body = await gateway.gql(narrow, QUERY, {"inactiveFor": "P1D"})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
