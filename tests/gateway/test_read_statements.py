"""Reads at the speed of the writes (issue 10): a partner's `member(memberNumber) { balance }` is
one round trip to PostgreSQL once the gateway has seen the member, and a page of transactions is
one statement a page. Counted over HTTP through the real application (token check, rate-limit
check, GraphQL) with the statements its own database sends (`tests/sql_statements.py`).

Before: the member lookup, then whether the member is linked to the caller (asked again by the
ledger), then the balance: three statements on two connections for one number."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.gateway.app import create_app
from shared.database import Database
from shared.ids import new_member_number
from tests.conftest import Gateway
from tests.factories import earn, enroll, make_partner, redeem
from tests.sql_statements import sql_statements

BALANCE = "query($n: String!) { member(memberNumber: $n) { balance { available pending held } } }"
PAGE = """query($n: String!, $after: String) { member(memberNumber: $n) {
  transactions(first: 2, after: $after) { edges { node { kind points } } pageInfo { hasNextPage endCursor } }
} }"""


@pytest.fixture(scope="module")
async def app_gateway(database_url: str) -> AsyncIterator[tuple[Gateway, Database]]:
    """The ASGI app over httpx, as the `gateway` fixture, with a handle on the app's own database
    (its pool is the one whose statements are counted)."""
    app = create_app(database_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield Gateway(client), app.state.db


async def _counted(
    gateway: Gateway, app_db: Database, token: str, query: str, variables: dict
) -> tuple[dict, list[str]]:
    async with sql_statements(app_db) as statements:
        body = await gateway.gql(token, query, variables)
    assert "errors" not in body, body
    return body["data"], statements


async def test_a_partners_balance_read_is_one_round_trip(db, app_gateway):
    gateway, app_db = app_gateway
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "120")
    token = await gateway.partner_token(cafe)
    n = {"n": member.member_number}

    await gateway.gql(token, BALANCE, n)  # warm-up: the member cache, the rate-limit copy
    data, statements = await _counted(gateway, app_db, token, BALANCE, n)
    assert data["member"]["balance"] == {"available": 120, "pending": 0, "held": 0}
    assert len(statements) == 1, statements
    assert "FROM wallets" in statements[0]

    # The balance itself is never cached: the next read sees a spend at once, still in one.
    assert (await redeem(db, cafe, member.member_number, 20)).errors == []
    data, statements = await _counted(gateway, app_db, token, BALANCE, n)
    assert data["member"]["balance"]["available"] == 100
    assert len(statements) == 1, statements


async def test_a_member_first_seen_costs_its_lookup_once(db, app_gateway):
    gateway, app_db = app_gateway
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    token = await gateway.partner_token(cafe)
    await gateway.gql(token, BALANCE, {"n": new_member_number()})  # warms all but this member

    data, first = await _counted(gateway, app_db, token, BALANCE, {"n": member.member_number})
    assert data["member"]["balance"] == {"available": 0, "pending": 0, "held": 0}
    assert len(first) == 2, first  # the link, then the balance; the link is then remembered
    assert "enrollments" in first[0]
    _, again = await _counted(gateway, app_db, token, BALANCE, {"n": member.member_number})
    assert len(again) == 1, again


async def test_unlinked_and_unknown_numbers_still_count_as_misses(db, app_gateway):
    """The shortcut does not open a door: a member linked only to another partner is null for
    this one, as an unknown number is, and both are recorded against the client (the miss counting
    that RATE_LIMITED rests on), however often the other partner reads the member."""
    gateway, app_db = app_gateway
    cafe, shop = await make_partner(db), await make_partner(db)
    member = await enroll(db, cafe)
    cafe_token, shop_token = await gateway.partner_token(cafe), await gateway.partner_token(shop)
    await gateway.gql(cafe_token, BALANCE, {"n": member.member_number})  # cached for the cafe
    for number in (member.member_number, new_member_number()):
        data, statements = await _counted(gateway, app_db, shop_token, BALANCE, {"n": number})
        assert data["member"] is None
        assert any("INSERT INTO rate_limit_hits" in s for s in statements), statements


async def test_transaction_pages_are_one_statement_each(db, app_gateway):
    gateway, app_db = app_gateway
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    for amount in ("10", "20", "30"):
        await earn(db, cafe, member.member_number, amount)
    token = await gateway.partner_token(cafe)
    await gateway.gql(token, PAGE, {"n": member.member_number})  # warm-up

    data, statements = await _counted(gateway, app_db, token, PAGE, {"n": member.member_number})
    page = data["member"]["transactions"]
    assert [e["node"]["points"] for e in page["edges"]] == [30, 20]
    assert page["pageInfo"]["hasNextPage"] is True
    assert len(statements) == 1, statements
    after = {"n": member.member_number, "after": page["pageInfo"]["endCursor"]}
    data, statements = await _counted(gateway, app_db, token, PAGE, after)
    assert [e["node"]["points"] for e in data["member"]["transactions"]["edges"]] == [10]
    assert len(statements) == 1, statements
