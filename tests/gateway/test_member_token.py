"""A member token can do nothing a partner or an admin does, and sees nothing of other members.

Every mutation and query root field of the schema whose declared access does not include the
member's scope is called with a member token: each must be FORBIDDEN. The list comes from the
assembled schema, so a new operation is walked the day it is added.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLInputObjectType, GraphQLNonNull, GraphQLObjectType, get_named_type

from services.gateway.error_docs import declared_operations
from services.gateway.schema import build_schema
from shared.access import MEMBER_SCOPE
from shared.ids import to_global_id
from tests.conftest import member_token
from tests.factories import earn, enroll, make_partner
from tests.gateway.test_declared_scopes import document, refused_value

SCHEMA = build_schema()._schema
OPERATIONS = {op.name: op.operation for op in declared_operations(SCHEMA)}


def _not_for_members(kind: str) -> list[str]:
    return sorted(
        name.removeprefix(f"{kind} ")
        for name, operation in OPERATIONS.items()
        if name.startswith(f"{kind} ")
        and operation.access.scopes  # ANY_TOKEN: viewer, node, expiryPolicy, rewards
        and MEMBER_SCOPE not in operation.access.scopes
    )


PARTNER_AND_ADMIN_MUTATIONS = _not_for_members("mutation")
PARTNER_AND_ADMIN_QUERIES = _not_for_members("query")
# A well-formed value per argument name (what matters is being refused before it is looked at).
ID_TYPES = {"settlementRun": "SettlementRun", "reconciliation": "Reconciliation"}


@pytest.fixture(scope="module")
async def two_members(db):
    cafe = await make_partner(db)
    mine, theirs = await enroll(db, cafe), await enroll(db, cafe)
    await earn(db, cafe, theirs.member_number, "75")
    return cafe, mine, theirs


def _query(name: str, other_number: str) -> tuple[str, dict[str, Any]]:
    graphql_field = SCHEMA.query_type.fields[name]  # type: ignore[union-attr]
    values: dict[str, Any] = {}
    declared = []
    for arg, spec in graphql_field.args.items():
        if not isinstance(spec.type, GraphQLNonNull):
            continue
        named = get_named_type(spec.type)
        if isinstance(named, GraphQLInputObjectType):  # previewEarn: an input refused anyway
            values[arg] = refused_value(arg, spec.type)
        else:
            values[arg] = {
                "String": other_number,
                "ID": to_global_id(ID_TYPES.get(name, "Member"), 1),
                "Duration": "P30D",
                "DateTime": "2026-01-01T00:00:00Z",
            }[named.name]
        declared.append(f"${arg}: {spec.type}")
    args = ", ".join(f"{a}: ${a}" for a in values)
    selection = " { __typename }" if isinstance(get_named_type(graphql_field.type), GraphQLObjectType) else ""
    head = f"query({', '.join(declared)})" if declared else "query"
    return f"{head} {{ {name}{f'({args})' if args else ''}{selection} }}", values


def test_the_walk_covers_what_partners_and_admins_do():
    assert {"recordPurchase", "redeemPoints", "enrollMember", "createPartner"} <= set(
        PARTNER_AND_ADMIN_MUTATIONS
    )
    assert {"member", "partners", "pointsExpiringSoon", "settlementRuns"} <= set(PARTNER_AND_ADMIN_QUERIES)
    assert "redeemReward" not in PARTNER_AND_ADMIN_MUTATIONS  # members may, for their own points


@pytest.mark.parametrize("name", PARTNER_AND_ADMIN_MUTATIONS)
async def test_a_member_token_cannot_call_a_partner_or_admin_mutation(gateway, db, two_members, name):
    _, mine, _ = two_members
    query, variables = document(name)
    body = await gateway.gql(await member_token(db, mine.id), query, variables)
    assert body["data"] is None or body["data"].get(name) is None, body
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body


@pytest.mark.parametrize("name", PARTNER_AND_ADMIN_QUERIES)
async def test_a_member_token_cannot_read_a_partner_or_admin_field(gateway, db, two_members, name):
    _, mine, theirs = two_members
    query, variables = _query(name, theirs.member_number)
    body = await gateway.gql(await member_token(db, mine.id), query, variables)
    assert body["data"] is None or body["data"].get(name) is None, body
    if name in ID_TYPES and "errors" not in body:
        return  # an id that names nothing is null before anyone's access is asked: nothing seen
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (query, body)


async def test_a_member_sees_nothing_of_another_member(gateway, db, two_members):
    cafe, mine, theirs = two_members
    token = await member_token(db, mine.id)
    body = await gateway.gql(
        token,
        "query($n: String!) { member(memberNumber: $n) { balance { available } } }",
        {"n": theirs.member_number},
    )
    assert body["data"]["member"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gateway.gql(
        token,
        "query($id: ID!) { node(id: $id) { ... on Member { memberNumber balance { available } } } }",
        {"id": to_global_id("Member", theirs.id)},
    )
    assert body["data"]["node"] is None
    # Their own `me` shows their own points only, and of partners only the id and name.
    body = await gateway.gql(
        token,
        "{ me { memberNumber balance { available }"
        " links { partner { name earnRate contract { redeemPrice { amount } } } } } }",
    )
    assert body.get("errors") is None, body
    assert body["data"]["me"]["memberNumber"] == mine.member_number
    assert body["data"]["me"]["balance"] == {"available": 0}
    assert body["data"]["me"]["links"] == [
        {"partner": {"name": cafe.name, "earnRate": None, "contract": None}}
    ]


async def test_what_any_token_may_read_a_member_token_may_too(gateway, db, two_members):
    _, mine, _ = two_members
    token = await member_token(db, mine.id)
    body = await gateway.gql(
        token, "{ viewer { scopes partner { id } } expiryPolicy { months } rewards { edges { cursor } } }"
    )
    assert body.get("errors") is None, body
    assert body["data"]["viewer"] == {"scopes": ["member"], "partner": None}
