"""The member's own graph: `me` with a member token, across every partner, and nothing else."""

from __future__ import annotations

import pytest

from services.gateway.schema import build_schema
from shared.access import MEMBER_SCOPE, Principal
from shared.graphql_types import Context
from shared.ids import to_global_id
from tests.conftest import member_token
from tests.factories import earn, enroll, make_partner, redeem
from tests.sql_statements import sql_statements

ME = """query { me { memberNumber email balance { available pending held }
  expiringPoints(within: "P3000D") { points expiresAt }
  transactions(first: 10) { edges { node { id kind points status occurredAt partner { id name } } } }
  links { partner { id name } linkedAt how }
  settings { requireCodeToSpend } } }"""


@pytest.fixture(scope="module")
def schema():
    return build_schema()


async def test_me_shows_the_members_points_at_every_partner_and_their_links(gateway, db):
    cafe, airline = await make_partner(db), await make_partner(db)
    member = await enroll(db, cafe, email="ada@example.org")
    assert (await earn(db, cafe, member.member_number, "100")).errors == []
    assert (await earn(db, airline, member.member_number, "50")).errors == []  # card presented
    assert (await redeem(db, airline, member.member_number, 30)).errors == []
    token = await member_token(db, member.id)

    body = await gateway.gql(token, ME)
    assert body.get("errors") is None, body
    me = body["data"]["me"]
    assert me["memberNumber"] == member.member_number
    assert me["email"] == "ada@example.org"
    assert me["balance"] == {"available": 120, "pending": 0, "held": 0}
    assert sum(e["points"] for e in me["expiringPoints"]) == 120
    nodes = [e["node"] for e in me["transactions"]["edges"]]
    assert [(n["kind"], n["points"], n["partner"]["name"]) for n in nodes] == [
        ("REDEEM", -30, airline.name),
        ("EARN", 50, airline.name),
        ("EARN", 100, cafe.name),
    ]
    assert {(k["partner"]["name"], k["how"]) for k in me["links"]} == {
        (cafe.name, "ENROLLED"),
        (airline.name, "CARD_PRESENTED"),
    }
    assert me["links"][0]["partner"]["id"] == to_global_id("Partner", cafe.id)
    assert me["settings"] == {"requireCodeToSpend": False}


async def test_me_is_for_member_tokens_only(gateway, db):
    partner = await make_partner(db)
    body = await gateway.gql(await gateway.partner_token(partner), "{ me { balance { available } } }")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_me_balance_is_one_statement(schema, db):
    """The principal is the member: no visibility query, no member row; only the balance."""
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "42")
    principal = Principal(client_id="app", scopes=frozenset({MEMBER_SCOPE}), member_id=member.id)
    async with sql_statements(db) as statements:
        result = await schema.execute(
            "{ me { balance { available pending held } } }", context_value=Context(principal=principal, db=db)
        )
    assert result.errors is None, result.errors
    assert result.data == {"me": {"balance": {"available": 42, "pending": 0, "held": 0}}}
    assert len(statements) == 1, statements


async def test_settings_change_and_show(gateway, db):
    member = await enroll(db, await make_partner(db))
    token = await member_token(db, member.id)
    body = await gateway.gql(
        token,
        "mutation { updateMemberSettings(input: {requireCodeToSpend: true})"
        " { settings { requireCodeToSpend } userErrors { code } } }",
    )
    assert body["data"]["updateMemberSettings"] == {
        "settings": {"requireCodeToSpend": True},
        "userErrors": [],
    }
    # Nothing to change is refused, and changes nothing.
    body = await gateway.gql(
        token,
        "mutation { updateMemberSettings(input: {})"
        " { settings { requireCodeToSpend } userErrors { field } } }",
    )
    assert body["data"]["updateMemberSettings"] == {
        "settings": None,
        "userErrors": [{"field": "requireCodeToSpend"}],
    }
    body = await gateway.gql(token, "{ me { settings { requireCodeToSpend } } }")
    assert body["data"]["me"]["settings"] == {"requireCodeToSpend": True}


async def test_expiring_points_within_a_window(gateway, db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "10")
    token = await member_token(db, member.id)
    body = await gateway.gql(token, '{ me { expiringPoints(within: "P1D") { points } } }')
    assert body["data"]["me"]["expiringPoints"] == []  # the default policy keeps points for months
