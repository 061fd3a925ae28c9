"""The cost limit walks the schema's types: a list costs its expected size, a connection's edges
its page, a list declaring its size that size (and what a partner sees of it when a partner asks)."""

from __future__ import annotations

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from services.gateway.limits import DEFAULT_LIST_SIZE, QueryCost
from services.gateway.schema import build_schema


@pytest.fixture(scope="module")
def graphql_schema():
    return build_schema()._schema


def cost(schema, query: str, variables=None, *, partners: int = 50, partner_view: bool = False) -> int:
    document = parse(query)
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    walk = QueryCost(schema, fragments, variables or {}, partners, partner_view)
    (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return walk.of_operation(operation)


def test_a_plain_list_costs_a_page_of_its_items(graphql_schema):
    # member 1 + expiringPoints (1 + 20 items x 2 fields); it cost 4 when lists counted as one.
    query = '{ member(memberNumber: "1") { expiringPoints(within: "P30D") { points expiresAt } } }'
    assert cost(graphql_schema, query) == 1 + 1 + DEFAULT_LIST_SIZE * 2


def test_a_connection_costs_its_page_of_edges(graphql_schema):
    query = """query($n: Int) { partners(first: $n) { edges { cursor node { id name } }
      pageInfo { hasNextPage } } }"""
    # partners 1 + edges (1 + n x (cursor + node 1 + 2)) + pageInfo (1 + 1)
    assert cost(graphql_schema, query, {"n": 7}) == 1 + 1 + 7 * 4 + 2
    assert cost(graphql_schema, query, {}) == 1 + 1 + 20 * 4 + 2  # the default page


def test_a_run_costs_its_statements_and_lines_as_the_coalition_plans_for(graphql_schema):
    query = '{ settlementRun(id: "x") { statements { net { amount } lines { kind } } } }'
    # 51 statements (50 partners and the coalition) x (net 2 + lines 1 + 106 lines x 1)
    assert cost(graphql_schema, query) == 1 + 1 + 51 * (2 + 1 + 106)
    assert cost(graphql_schema, query, partners=10) == 1 + 1 + 11 * (2 + 1 + 26)
    # A partner sees one statement of a run, its own.
    assert cost(graphql_schema, query, partner_view=True) == 1 + 1 + 1 * (2 + 1 + 106)


def test_fragments_are_costed_on_their_type(graphql_schema):
    query = """query { node(id: "x") { ...Run } }
      fragment Run on SettlementRun { reconciliations { openDisputes } }"""
    assert cost(graphql_schema, query) == 1 + 1 + 50 * 1
    inline = '{ node(id: "x") { ... on SettlementRun { reconciliations { openDisputes } } } }'
    assert cost(graphql_schema, inline, partner_view=True) == 1 + 1 + 1
