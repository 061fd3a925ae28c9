"""A log an operator can read: one JSON line per event, every line of a request carrying its id,
a traceback only for the unexpected (the rest of the suite is held to that too: see
`no_traceback_for_expected_errors` in tests/conftest.py)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from shared.logs import JsonFormatter, TextFormatter, logging_config, request_id
from tests.e2e.conftest import Gateway, start_gateway
from tests.factories import SeededPartner, make_partner
from tests.gateway import queries as q

# What a client gets wrong, each answered without a traceback: (what, document, variables)
CLIENT_MISTAKES = [
    ("forbidden", "{ partners(first: 1) { edges { node { id } } } }", None),
    ("validation", "{ viewer { noSuchField } }", None),
    ("syntax", "{ viewer {", None),
    (
        "bad scalar",
        q.REDEEM,
        {"input": {"idempotencyKey": "k", "memberNumber": "1", "points": 1.5, "orderId": "o"}},
    ),
    ("page size", "query($f: Int) { rewards(first: $f) { edges { node { id } } } }", {"f": 101}),
    (
        "user error",
        q.PURCHASE,
        {
            "input": {
                "idempotencyKey": "k1",
                "memberNumber": "100000000008",
                "amount": {"amount": "-1.00", "currency": "EUR"},
                "orderId": "o1",
            }
        },
    ),
]


@pytest.fixture(scope="module")
def json_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = start_gateway(database_url, tmp_path_factory.mktemp("logs") / "gateway.log", LOG_FORMAT="json")
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
async def live_partner(db) -> SeededPartner:
    return await make_partner(db, name="Log Lumen")


def _lines_when(log: Path, ready: Callable[[list[dict[str, object]]], bool]) -> list[dict[str, object]]:
    """The log's lines once `ready` holds for them, or as they are after 10 seconds (the server
    is another process: waiting here holds nothing of it up)."""
    deadline = time.monotonic() + 10
    while not ready(lines := _lines(log)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return lines


def _lines(log: Path) -> list[dict[str, object]]:
    text = log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    not_json = [line for line in lines if not line.startswith("{")]
    assert not not_json, f"lines that are not JSON: {not_json[:5]}"
    return [json.loads(line) for line in lines]


async def test_client_mistakes_are_one_json_line_each_with_the_request_id(json_server, live_partner):
    async with httpx.AsyncClient(base_url=json_server.base) as client:
        token_answer = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(live_partner.client_id, live_partner.client_secret),
        )
        token = token_answer.json()["access_token"]
        ids = {}
        for what, document, variables in CLIENT_MISTAKES:
            response = await client.post(
                "/graphql",
                json={"query": document, "variables": variables or {}},
                headers={
                    "Authorization": f"Bearer {token}",
                    "X-Request-Id": f"mistake-{what.replace(' ', '-')}",
                },
            )
            assert response.status_code == 200, response.text
            ids[what] = response.headers["x-request-id"]
        unauthenticated = await client.post("/graphql", json={"query": "{ viewer { clientId } }"})
        assert unauthenticated.status_code == 401

    # The server writes a request's access line as its response finishes, so the last one may
    # still be on its way when the client has the answer: wait for it (bounded), then read.
    lines = _lines_when(json_server.log, lambda ls: any(line.get("status") == 401 for line in ls))
    assert not [line for line in lines if "exception" in line or "Traceback" in str(line.get("message"))]
    for what, rid in ids.items():
        of_request = [line for line in lines if line.get("request_id") == rid]
        access = [line for line in of_request if line["logger"] == "coalition.access"]
        assert len(access) == 1, (what, of_request)
        assert access[0]["status"] == 200 and access[0]["path"] == "/graphql"
        assert access[0]["client_id"] == live_partner.client_id
        assert isinstance(access[0]["duration_ms"], int | float)
        if what != "user error":  # a userErrors payload is a result, not a GraphQL error
            [error] = [line for line in of_request if line["logger"] == "coalition.graphql"]
            assert error["level"] == "INFO" and error["code"], (what, error)
    refused = [line for line in lines if line["logger"] == "coalition.access" and line["status"] == 401]
    assert refused and "client_id" not in refused[-1]


def _record(exc_info: object = None, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("coalition.test", logging.INFO, __file__, 1, "hello %s", ("world",), exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_json_record_stays_one_line_whatever_it_carries():
    """JSON leaves U+0085, U+2028 and U+2029 raw when not ASCII-only, and line readers (Python's
    splitlines, JavaScript) break on them: a fuzzed variable in an error message split a record."""
    message = "a\nb\rc\x85d\u2028e\u2029f é"
    record = logging.LogRecord("coalition.test", logging.INFO, __file__, 1, "%s", (message,), None)
    out = JsonFormatter().format(record)
    assert len(out.splitlines()) == 1
    assert json.loads(out)["message"] == message and "é" in out  # other text stays readable


def test_json_lines_carry_fields_and_tracebacks_only_when_logged():
    token = request_id.set("rid-1")
    try:
        line = json.loads(JsonFormatter().format(_record(status=200, request_id="rid-1")))
    finally:
        request_id.reset(token)
    assert line["message"] == "hello world" and line["status"] == 200 and line["request_id"] == "rid-1"
    assert "exception" not in line and line["level"] == "INFO" and line["time"].endswith("+00:00")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        with_traceback = json.loads(JsonFormatter().format(_record(sys.exc_info())))
    assert "Traceback" in with_traceback["exception"] and "ValueError: boom" in with_traceback["exception"]


def test_text_format_for_humans():
    text = TextFormatter().format(_record(status=401, request_id="abc"))
    assert "coalition.test [abc] hello world status=401" in text
    assert not text.startswith("{")


def test_log_format_is_checked(monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(SystemExit, match="LOG_FORMAT must be one of json, text"):
        logging_config()
    monkeypatch.setenv("LOG_FORMAT", "TEXT")
    assert logging_config()["formatters"]["main"]["()"] is TextFormatter
    monkeypatch.delenv("LOG_FORMAT")
    assert logging_config()["formatters"]["main"]["()"] is JsonFormatter


def test_only_a_clients_mistake_goes_without_a_traceback():
    """A scalar's refusal is the client's (no traceback); an exception from our own code before
    execution (an extension that raised) is a bug, and is logged with one."""
    from graphql import GraphQLError

    from services.gateway.graphql_errors import expected

    refused = GraphQLError(
        "Variable '$n' got invalid value 1.5; Points must be a whole number", original_error=ValueError("x")
    )
    literal = GraphQLError("Expected value of type 'Points!', found 1.5; x", original_error=ValueError("x"))
    bug = GraphQLError("'NoneType' object has no attribute 'name'", original_error=AttributeError("name"))
    assert expected(refused) and expected(literal) and not expected(bug)
