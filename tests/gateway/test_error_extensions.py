"""Every error a client gets carries `extensions.code` and the request's `extensions.requestId`,
and every answer carries `X-Request-Id`: the client branches on the code and quotes the id."""

from __future__ import annotations

import re

import pytest

from services.gateway.app import MAX_BODY_BYTES
from shared.settings import get_settings
from tests.gateway import queries as q

GENERATED = re.compile(r"[0-9a-f]{32}")


def _too_many_aliases() -> str:
    return (
        "{ " + " ".join(f"a{i}: viewer {{ clientId }}" for i in range(get_settings().max_aliases + 1)) + " }"
    )


# (what is wrong, the document, its variables, the code a client must get)
CASES = [
    ("alias limit", _too_many_aliases(), None, "QUERY_TOO_COMPLEX"),
    (
        "token limit",
        "{ viewer { " + "clientId " * get_settings().max_tokens + "} }",
        None,
        "QUERY_TOO_COMPLEX",
    ),
    ("syntax", "{ viewer { clientId ", None, "GRAPHQL_PARSE_FAILED"),
    ("unknown field", "{ viewer { noSuchField } }", None, "GRAPHQL_VALIDATION_FAILED"),
    ("missing variable", q.MEMBER, {}, "BAD_USER_INPUT"),
    ("variable of the wrong type", q.MEMBER, {"n": 12}, "BAD_USER_INPUT"),
    (
        "bad scalar",
        q.REDEEM,
        {"input": {"idempotencyKey": "k", "memberNumber": "100000000008", "points": 1.5, "orderId": "o"}},
        "BAD_USER_INPUT",
    ),
    (
        "page size",
        "query($f: Int) { rewards(first: $f) { edges { node { id } } } }",
        {"f": 101},
        "BAD_USER_INPUT",
    ),
    ("scope", "{ partners(first: 1) { edges { node { id } } } }", None, "FORBIDDEN"),
]


@pytest.mark.parametrize(("what", "document", "variables", "code"), CASES, ids=[c[0] for c in CASES])
async def test_every_error_has_a_code_and_the_request_id(
    gateway, partner_pair, what, document, variables, code
):
    _, token, _, _ = partner_pair
    response = await gateway.post(token, document, variables)
    body = response.json()
    assert body["errors"], body
    rid = response.headers["x-request-id"]
    assert GENERATED.fullmatch(rid)
    for error in body["errors"]:
        assert error["extensions"]["code"] == code, (what, error)
        assert error["extensions"]["requestId"] == rid


async def test_unknown_operation_name_is_a_bad_request(gateway, admin_token):
    response = await gateway.client.post(
        "/graphql",
        json={"query": "query A { viewer { clientId } }", "operationName": "B"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


async def test_a_clients_request_id_is_kept_and_a_bad_one_replaced(gateway, admin_token):
    auth = {"Authorization": f"Bearer {admin_token}"}
    mine = await gateway.client.post(
        "/graphql",
        json={"query": "{ viewer { noSuchField } }"},
        headers={**auth, "X-Request-Id": "till-42.a:b"},
    )
    assert mine.headers["x-request-id"] == "till-42.a:b"
    assert mine.json()["errors"][0]["extensions"]["requestId"] == "till-42.a:b"
    for bad in ("two words", "x" * 129, "<script>", ""):
        response = await gateway.client.post(
            "/graphql", json={"query": "{ viewer { clientId } }"}, headers={**auth, "X-Request-Id": bad}
        )
        assert response.status_code == 200
        assert GENERATED.fullmatch(response.headers["x-request-id"]), bad
    ok = await gateway.client.get("/healthz")
    assert GENERATED.fullmatch(ok.headers["x-request-id"])


async def test_http_level_refusals_carry_the_request_id_too(gateway, admin_token):
    """401 from the token guard, 413 from the body limit, 400 from the view, 404 from an export."""
    unauthenticated = await gateway.client.post("/graphql", json={"query": "{ viewer { clientId } }"})
    assert unauthenticated.status_code == 401
    auth = {"Authorization": f"Bearer {admin_token}"}
    too_large = await gateway.client.post(
        "/graphql",
        content=b"{" + b" " * MAX_BODY_BYTES + b"}",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert too_large.status_code == 413
    not_json = await gateway.client.post(
        "/graphql", content=b"hello", headers={**auth, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    no_run = await gateway.client.get("/settlement/runs/999999/export.csv", headers=auth)
    assert no_run.status_code == 404
    for response, code in (
        (unauthenticated, "UNAUTHENTICATED"),
        (too_large, "PAYLOAD_TOO_LARGE"),
        (not_json, "BAD_REQUEST"),
        (no_run, "NOT_FOUND"),
    ):
        [error] = response.json()["errors"]
        assert error["extensions"] == {"code": code, "requestId": response.headers["x-request-id"]}
