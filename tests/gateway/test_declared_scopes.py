"""The scope a mutation's description names is the one it checks: each mutation, called with a
token that has every scope of its kind but the declared one, is FORBIDDEN; with it, it is not.

Inputs are made from the schema: every required field gets a value of its type that no service
accepts (blank text, zero, a negative price, a period that ends where it starts), so the calls that
pass the scope check answer userErrors and write nothing. Every service checks the scope before
anything else, so the value never matters to the FORBIDDEN side.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    Undefined,
    get_nullable_type,
)

from services.gateway.error_docs import declared_operations
from services.gateway.schema import build_schema
from services.identity import service as identity
from shared.access import ADMIN_SCOPES, MEMBER_SCOPE, PARTNER_SCOPES
from shared.ids import to_global_id
from tests.conftest import member_token
from tests.factories import enroll, make_partner

SCHEMA = build_schema()._schema
MUTATIONS = {
    op.name.removeprefix("mutation "): op.operation
    for op in declared_operations(SCHEMA)
    if op.name.startswith("mutation ")
}
# The type a global ID field names, by field name (a malformed ID is refused before the scope
# check by some resolvers, so the FORBIDDEN side needs a well-formed one).
ID_TYPES = {
    "rewardId": "Reward",
    "runId": "SettlementRun",
    "itemId": "ReconciliationItem",
    "partnerId": "Partner",
    "redemptionId": "Redemption",
    "authorizationId": "Authorization",
    "ruleId": "EarnRule",
    "promotionId": "Promotion",
    "id": "Promotion",  # archivePromotion(input: {id})
    "endpointId": "WebhookEndpoint",
    "deliveryId": "WebhookDelivery",
    "activityId": "Activity",
    "charityId": "Partner",
}
SCALARS: dict[str, Any] = {
    "String": "",
    "Int": 0,
    "Points": 0,
    "Boolean": False,
    "Decimal": "-1",
    "DateTime": "2020-01-01T00:00:00Z",
    "Duration": "PT1S",
}


def refused_value(name: str, graphql_type: GraphQLInputType) -> Any:
    named = get_nullable_type(graphql_type)
    if isinstance(named, GraphQLInputObjectType):
        return {
            field_name: refused_value(field_name, field.type)
            for field_name, field in named.fields.items()
            if isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined
        }
    if isinstance(named, GraphQLEnumType):
        return next(iter(named.values))
    if isinstance(named, GraphQLList):  # an empty list is as refusable as any value
        return []
    assert isinstance(named, GraphQLScalarType), (name, named)
    if named.name == "ID":
        return to_global_id(ID_TYPES[name], 1)
    return SCALARS[named.name]


def document(name: str) -> tuple[str, dict[str, Any]]:
    graphql_field = SCHEMA.mutation_type.fields[name]  # type: ignore[union-attr]
    if "input" not in graphql_field.args:  # createSpendCode: the caller is all it needs
        return f"mutation {{ {name} {{ __typename }} }}", {}
    input_type = graphql_field.args["input"].type
    payload = get_nullable_type(graphql_field.type)
    query = f"mutation($input: {input_type}) {{ {name}(input: $input) {{ __typename }} }}"
    assert payload is not None
    return query, {"input": refused_value("input", input_type)}


def test_every_mutation_is_covered():
    assert set(MUTATIONS) == set(SCHEMA.mutation_type.fields)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
async def partner(db):
    return await make_partner(db)


@pytest.fixture(scope="module")
async def member(db, partner):
    return await enroll(db, partner)


async def _admin_token(gateway, db, scopes: set[str]) -> str:
    async with db.sessions() as session:
        creds = await identity.create_client(session, name="scope probe", scopes=sorted(scopes))
        await session.commit()
    return await gateway.token(creds.client_id, creds.client_secret)


def others_too(name: str, scope: str) -> bool:
    return scope == MEMBER_SCOPE and len(MUTATIONS[name].access.scopes) > 1


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0].get("extensions", {}).get("code") if errors else None


@pytest.mark.parametrize("name", sorted(MUTATIONS))
async def test_the_declared_scope_is_the_one_checked(gateway, db, partner, member, name):
    query, variables = document(name)
    for scope in MUTATIONS[name].access.scopes:
        if scope in PARTNER_SCOPES:
            without = await gateway.partner_token(partner, " ".join(sorted(PARTNER_SCOPES - {scope})))
            with_it = await gateway.partner_token(partner, scope)
        elif scope == MEMBER_SCOPE:
            # The member's own token; without: a partner's with every scope the operation does not
            # also accept (redeemReward takes a partner's `points:redeem` too).
            others = set(MUTATIONS[name].access.scopes) - {MEMBER_SCOPE}
            without = await gateway.partner_token(partner, " ".join(sorted(PARTNER_SCOPES - others)))
            with_it = await member_token(db, member.id)
        else:
            assert scope in ADMIN_SCOPES, scope
            without = await _admin_token(gateway, db, ADMIN_SCOPES - {scope})
            with_it = await _admin_token(gateway, db, {scope})
        refused = await gateway.gql(without, query, variables)
        assert _code(refused) == "FORBIDDEN", (name, scope, refused)
        # The message names the scope missing (of an operation open to partners and members, the
        # partner's: that is what the partner token lacked).
        assert scope in refused["errors"][0]["message"] or others_too(name, scope)
        allowed = await gateway.gql(with_it, query, variables)
        assert _code(allowed) is None, (name, scope, allowed)
        assert allowed["data"][name]["__typename"].endswith("Payload")
