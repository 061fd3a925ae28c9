"""GraphQL over HTTP (the spec, as graphql-http's audit reads it): what a request must look like,
which media type the answer comes in, and which status code it carries.

- A body that is not a GraphQL request (not JSON, not an object, parameters of the wrong JSON
  type, another Content-Type) is a 400 with a GraphQL-shaped error naming the problem, never a
  500 or a plain-text line, whatever the client accepts.
- `Accept: application/graphql-response+json` gets that type back, and 400 with no `data` entry
  when the request never reached execution; `application/json` clients keep 200 with `errors`.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.gateway.media import GRAPHQL_RESPONSE_JSON, JSON, negotiate

ACCEPT_SPEC = {"Accept": f"{GRAPHQL_RESPONSE_JSON}, {JSON}"}
ACCEPT_JSON = {"Accept": JSON}


async def _post(gateway, token: str, body: bytes | str, **headers: str):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": JSON, **headers}
    content = body.encode() if isinstance(body, str) else body
    return await gateway.client.post("/graphql", content=content, headers=headers)


def _only_error(response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"errors"}, body
    (error,) = body["errors"]
    return error


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('"hello"', "must be a JSON object"),
        ("42", "must be a JSON object"),
        ("null", "must be a JSON object"),
        ("[]", "batched operations are not supported"),
        ('[{"query": "{ __typename }"}]', "batched operations are not supported"),
        ('{ "not a JSON', "is not valid JSON"),
        (b'{"query": "{ \xe9 }"}', "must be UTF-8"),
        ("", "has no body"),
        ('{"qeury": "{ __typename }"}', "has no `query`"),
        ('{"query": ""}', "`query` is empty"),
        ('{"query": {"obj": "ect"}}', "`query` must be a string"),
        ('{"query": false}', "`query` must be a string"),
        ('{"query": "{ __typename }", "variables": "x"}', "`variables` must be an object"),
        ('{"query": "{ __typename }", "variables": [1]}', "`variables` must be an object"),
        ('{"query": "{ __typename }", "extensions": 0}', "`extensions` must be an object"),
        ('{"query": "{ __typename }", "operationName": 3}', "`operationName` must be a string"),
        ('{"query": "{ __typename }", "operationName": ["a"]}', "`operationName` must be a string"),
    ],
)
@pytest.mark.parametrize("accept", [ACCEPT_JSON, ACCEPT_SPEC])
async def test_a_body_that_is_not_a_graphql_request_is_a_400_naming_the_problem(
    gateway, admin_token, body, problem, accept
):
    response = await _post(gateway, admin_token, body, **accept)
    assert response.status_code == 400
    error = _only_error(response)
    assert problem in error["message"] and error["extensions"]["code"] == "BAD_REQUEST"
    assert response.headers["content-type"] == negotiate(accept["Accept"])


@pytest.mark.parametrize(
    ("content_type", "problem"),
    [
        ("text/plain", "Content-Type must be application/json; got text/plain"),
        ("application/x-www-form-urlencoded", "got application/x-www-form-urlencoded"),
        ("application/json; charset=latin-1", "must be UTF-8; Content-Type says latin-1"),
        (None, "Content-Type must be application/json; none was given"),
    ],
)
async def test_another_content_type_is_a_400_naming_it(gateway, admin_token, content_type, problem):
    headers = {"Authorization": f"Bearer {admin_token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await gateway.client.post("/graphql", content=b'{"query": "{ __typename }"}', headers=headers)
    assert response.status_code == 400
    assert problem in _only_error(response)["message"]


async def test_utf8_and_null_parameters_are_fine(gateway, admin_token):
    body = '{"query": "query Q { __typename }", "variables": null, "extensions": null, "operationName": "Q"}'
    response = await _post(gateway, admin_token, body, **{"Content-Type": "application/json; charset=UTF-8"})
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}


async def test_the_spec_media_type_is_answered_when_asked_for(gateway, admin_token):
    ok = await _post(gateway, admin_token, '{"query": "{ viewer { clientId } }"}', **ACCEPT_SPEC)
    assert ok.status_code == 200 and ok.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    assert ok.json()["data"]["viewer"]["clientId"]
    for accept in ({}, {"Accept": "*/*"}, ACCEPT_JSON, {"Accept": "text/html"}):
        plain = await _post(gateway, admin_token, '{"query": "{ __typename }"}', **accept)
        assert (accept, plain.status_code, plain.headers["content-type"]) == (accept, 200, JSON)


REQUEST_ERRORS = [
    pytest.param({"query": "{"}, "Syntax Error", id="does not parse"),
    pytest.param({"query": "{ noSuchField }"}, "Cannot query field 'noSuchField'", id="does not validate"),
    pytest.param(
        {"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": None}},
        "Variable '$id' has invalid value",
        id="variable does not coerce",
    ),
    pytest.param(
        {"query": "query($n: String!) { member(memberNumber: $n) { id } }", "variables": {}},
        "Variable '$n' has invalid value",
        id="variable missing",
    ),
    pytest.param(
        {"query": "query A { __typename }", "operationName": "B"},
        'Unknown operation named "B"',
        id="no such operation",
    ),
]


@pytest.mark.parametrize(("request_body", "message"), REQUEST_ERRORS)
async def test_a_request_that_never_executes_is_a_400_without_data_for_the_spec_media_type(
    gateway, admin_token, request_body, message
):
    headers = {"Authorization": f"Bearer {admin_token}", **ACCEPT_SPEC}
    response = await gateway.client.post("/graphql", json=request_body, headers=headers)
    assert response.status_code == 400 and response.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    body = response.json()
    assert "data" not in body
    assert message in body["errors"][0]["message"]


@pytest.mark.parametrize(("request_body", "message"), REQUEST_ERRORS)
async def test_application_json_clients_keep_200_with_errors(gateway, admin_token, request_body, message):
    headers = {"Authorization": f"Bearer {admin_token}", **ACCEPT_JSON}
    response = await gateway.client.post("/graphql", json=request_body, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"] == JSON
    body = response.json()
    assert body["data"] is None and message in body["errors"][0]["message"]


async def test_an_error_during_execution_is_a_200_with_data_for_the_spec_media_type(gateway, partner_pair):
    _, token, _, _ = partner_pair
    headers = {"Authorization": f"Bearer {token}", **ACCEPT_SPEC}
    query = "{ viewer { clientId } partners(first: 1) { edges { cursor } } }"
    response = await gateway.client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    body = response.json()
    assert "data" in body and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["path"] == ["partners"]


async def test_get_runs_queries_but_not_mutations(gateway, admin_token):
    auth = {"Authorization": f"Bearer {admin_token}"}
    params = {"query": "query($n: String!) { __type(name: $n) { name } }", "variables": '{"n": "Points"}'}
    query = await gateway.client.get("/graphql", params=params, headers=auth)
    assert query.status_code == 200 and query.json() == {"data": {"__type": {"name": "Points"}}}

    mutation = await gateway.client.get("/graphql", params={"query": "mutation { __typename }"}, headers=auth)
    assert mutation.status_code == 405 and mutation.headers["allow"] == "POST"
    assert _only_error(mutation)["extensions"]["code"] == "METHOD_NOT_ALLOWED"

    no_query = await gateway.client.get("/graphql", headers={**auth, "Accept": "text/html"})
    assert no_query.status_code == 400 and "has no `query`" in _only_error(no_query)["message"]
    params = {"query": "{ __typename }", "variables": "["}
    bad = await gateway.client.get("/graphql", params=params, headers=auth)
    assert bad.status_code == 400 and "`variables` parameter is not valid JSON" in _only_error(bad)["message"]


async def test_no_token_is_still_a_401_whatever_is_accepted(gateway):
    response = await gateway.client.post("/graphql", json={"query": "{ __typename }"}, headers=ACCEPT_SPEC)
    assert response.status_code == 401
    assert _only_error(response)["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        ("text/html", JSON),  # nothing acceptable: the Accept header is disregarded
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, {JSON}", GRAPHQL_RESPONSE_JSON),
        (f"{JSON}, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),  # equal quality: the spec's type
        (f"{GRAPHQL_RESPONSE_JSON};q=0.5, {JSON}", JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, {JSON};q=0.9", GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0, */*", JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=bad, {JSON}", JSON),
        ("Application/GraphQL-Response+JSON ; q=1", GRAPHQL_RESPONSE_JSON),
    ],
)
def test_negotiation(accept, chosen):
    assert negotiate(accept) == chosen
