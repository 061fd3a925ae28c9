"""Gateway limits: depth, aliases, tokens, cost, page size; and introspection for codegen."""

from __future__ import annotations

from services.gateway.schema_export import SCHEMA_FILE, render_sdl
from shared.settings import get_settings

DEEP = """{ member(memberNumber: "100000000008") { transactions(first: 1) { edges { node {
  partner { contract { issuePrice { amount } } } } } } } }"""


async def test_depth_limit(monkeypatch):
    """The deepest path our schema has today is 8; with the limit set to 6 it is refused
    (at validation, before any resolver runs), while introspection stays exempt."""
    from graphql import get_introspection_query

    from services.gateway.schema import build_schema

    monkeypatch.setenv("MAX_QUERY_DEPTH", "6")
    get_settings.cache_clear()
    try:
        schema = build_schema()
    finally:
        monkeypatch.delenv("MAX_QUERY_DEPTH")
        get_settings.cache_clear()
    result = await schema.execute(DEEP)
    [error] = [e for e in result.errors if "exceeds maximum operation depth of 6" in e.message]
    assert error.extensions == {"code": "QUERY_TOO_COMPLEX"}
    introspection = await schema.execute(get_introspection_query())
    assert not introspection.errors


async def test_alias_limit(gateway, admin_token):
    aliases = " ".join(f"a{i}: viewer {{ clientId }}" for i in range(get_settings().max_aliases + 1))
    body = (await gateway.post(admin_token, "{ " + aliases + " }")).json()
    [error] = body["errors"]
    assert "aliases" in error["message"] and error["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_token_limit(gateway, admin_token):
    fields = " ".join("clientId" for _ in range(get_settings().max_tokens))
    body = (await gateway.post(admin_token, "{ viewer { " + fields + " } }")).json()
    [error] = body["errors"]
    assert "token" in error["message"] and error["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_cost_limit_counts_nested_pages(gateway, admin_token):
    query = """query($n: String!, $f: Int) { member(memberNumber: $n) {
      a: transactions(first: $f) { edges { node { id kind points status orderId occurredAt
        partner { id name currency earnRate returnWindowDays createdAt } } } } } }"""
    small = (await gateway.post(admin_token, query, {"n": "100000000008", "f": 5})).json()
    assert "errors" not in small
    # Pages of 100 are allowed, but the limit counts what a query can return in total.
    cost_limit = get_settings().max_query_cost
    many = " ".join(
        f"m{i}: member(memberNumber: $n) {{ transactions(first: 100) {{ edges {{ node {{ "
        "id kind points status orderId occurredAt partner { id name currency } } } } }"
        for i in range(12)
    )
    body = (
        await gateway.post(admin_token, "query($n: String!) { " + many + " }", {"n": "100000000008"})
    ).json()
    assert any(e.get("extensions", {}).get("code") == "QUERY_TOO_COMPLEX" for e in body["errors"]), (
        cost_limit,
        body,
    )


async def test_introspection_works_for_authenticated_clients_only(gateway, admin_token):
    from graphql import get_introspection_query

    response = await gateway.post(admin_token, get_introspection_query())
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body.get("errors")
    names = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"Member", "Transaction", "Points", "Money", "UserError"} <= names
    assert (await gateway.post(None, get_introspection_query())).status_code == 401


def test_schema_file_matches_the_code():
    """schema.graphql is generated: run `make schema` after changing the API."""
    assert SCHEMA_FILE.read_text() == render_sdl()


async def test_oversized_bodies_are_refused_unread(gateway, admin_token):
    from services.gateway.app import MAX_BODY_BYTES

    padding = " " * (MAX_BODY_BYTES + 1)
    response = await gateway.post(admin_token, "{ viewer { clientId } }" + padding)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
