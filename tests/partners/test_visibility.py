"""What a partner may see of other partners, by every path the schema exposes a Partner on.

A partner sees its own terms and contract; of another partner only the id and name (what a
statement needs); admins see everything. The rule is the partners service's (`may_see_terms`),
applied by the Partner type's fields whoever built the object, so no path can forget it.
"""

from __future__ import annotations

from shared.ids import to_global_id
from tests.gateway.test_settlement_api import RUN, _trading_day

TERMS = """id name currency earnRate earnRounding returnWindowDays createdAt
  contract { issuePrice { amount } redeemPrice { amount } issueFeePerPoint { amount } breakageShare }"""
STATEMENTS = (
    "query($id: ID!) { settlementRun(id: $id) { statements { partner { "
    + TERMS
    + " } lines { kind counterparty { "
    + TERMS
    + " } } } } }"
)
EVERY_PATH = (
    "query($n: String!, $me: ID!, $other: ID!) { viewer { partner { "
    + TERMS
    + " } } me: node(id: $me) { ... on Partner { "
    + TERMS
    + " } } other: node(id: $other) { ... on Partner { "
    + TERMS
    + " } } member(memberNumber: $n) { transactions(first: 10) { edges { node { partner { "
    + TERMS
    + " } } } } } }"
)
HIDDEN = ("currency", "earnRate", "earnRounding", "returnWindowDays", "createdAt", "contract")


def _shows_terms(partner: dict) -> bool:
    return all(partner[f] is not None for f in HIDDEN) and partner["contract"]["issuePrice"]["amount"]


def _shows_only_id_and_name(partner: dict, expected_id: str, expected_name: str) -> bool:
    return (partner["id"], partner["name"]) == (expected_id, expected_name) and all(
        partner[f] is None for f in HIDDEN
    )


async def _as_admin_of_a_small_coalition(db, monkeypatch, query: str, variables: dict) -> dict:
    from services.gateway.schema import build_schema
    from shared.graphql_types import Context
    from shared.settings import get_settings
    from tests.factories import ADMIN

    monkeypatch.setenv("QUERY_COST_PARTNERS", "2")
    get_settings.cache_clear()
    try:
        schema = build_schema()
    finally:
        monkeypatch.delenv("QUERY_COST_PARTNERS")
        get_settings.cache_clear()
    result = await schema.execute(query, variables, context_value=Context(principal=ADMIN, db=db))
    assert result.errors is None, result.errors
    return result.data["settlementRun"]


async def test_a_statement_shows_the_counterparty_by_name_only(
    gateway, db, admin_token, partner_pair, monkeypatch
):
    cafe, cafe_token, airline, airline_token = partner_pair
    period, _ = await _trading_day(db, cafe, airline, days_ago=97)
    run = (await gateway.gql(admin_token, RUN, {"input": period}))["data"]["runSettlement"]["run"]
    cafe_id, airline_id = to_global_id("Partner", cafe.id), to_global_id("Partner", airline.id)

    seen = (await gateway.gql(airline_token, STATEMENTS, {"id": run["id"]}))["data"]["settlementRun"]
    [statement] = seen["statements"]
    assert statement["partner"]["id"] == airline_id and _shows_terms(statement["partner"])
    counterparties = [x["counterparty"] for x in statement["lines"] if x["counterparty"]]
    assert counterparties, statement["lines"]
    for other in counterparties:
        assert _shows_only_id_and_name(other, cafe_id, cafe.name), other

    # The admin sees every partner's terms on the same path. Every line of every statement of a run
    # is over the cost limit for the 50 partners it plans for (the export has them), so the admin
    # reads it through a gateway planned for a two-partner coalition (QUERY_COST_PARTNERS).
    full = await _as_admin_of_a_small_coalition(db, monkeypatch, STATEMENTS, {"id": run["id"]})
    named = [s["partner"] for s in full["statements"] if s["partner"]]
    named += [x["counterparty"] for s in full["statements"] for x in s["lines"] if x["counterparty"]]
    assert {p["id"] for p in named} >= {cafe_id, airline_id}
    assert all(_shows_terms(p) for p in named)

    # And the mirror image: the cafe sees the airline by name only.
    mirror = (await gateway.gql(cafe_token, STATEMENTS, {"id": run["id"]}))["data"]["settlementRun"]
    [own] = mirror["statements"]
    assert own["partner"]["id"] == cafe_id and _shows_terms(own["partner"])
    for other in [x["counterparty"] for x in own["lines"] if x["counterparty"]]:
        assert _shows_only_id_and_name(other, airline_id, airline.name), other


async def test_viewer_node_and_history_agree(gateway, db, partner_pair):
    from tests.factories import earn, enroll

    cafe, cafe_token, airline, _ = partner_pair
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "20")
    cafe_id, airline_id = to_global_id("Partner", cafe.id), to_global_id("Partner", airline.id)
    body = await gateway.gql(
        cafe_token, EVERY_PATH, {"n": member.member_number, "me": cafe_id, "other": airline_id}
    )
    assert "errors" not in body, body
    data = body["data"]
    assert _shows_terms(data["viewer"]["partner"])
    assert _shows_terms(data["me"])
    assert _shows_only_id_and_name(data["other"], airline_id, airline.name)
    [edge] = data["member"]["transactions"]["edges"]
    assert _shows_terms(edge["node"]["partner"])  # a partner's history is its own


async def test_admins_see_every_partners_terms_on_node(gateway, admin_token, partner_pair):
    cafe, _, _, _ = partner_pair
    query = "query($id: ID!) { node(id: $id) { ... on Partner { " + TERMS + " } } }"
    body = await gateway.gql(admin_token, query, {"id": to_global_id("Partner", cafe.id)})
    assert _shows_terms(body["data"]["node"])
