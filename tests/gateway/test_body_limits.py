"""Request bodies are bounded whatever their framing: a declared Content-Length over a route's
limit is refused unread, a chunked body is counted as it arrives and refused the moment it passes
the limit, and the upload route decides who may send a file before reading any of it.

Real HTTP against `coalition serve`, with hand-written chunked requests (`rawhttp`): framing is
what these tests are about, and the in-process transport has none. `finish=False` leaves the
body open while the answer is read, so an answer shows the server did not wait for the end.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx

from services.gateway.app import MAX_BODY_BYTES
from services.identity.http import MAX_FORM_BYTES
from services.settlement.http import MAX_UPLOAD_BYTES
from tests.gateway.conftest import live_token
from tests.gateway.rawhttp import post_chunked

CHUNK = 64 * 1024
UPLOAD = "/settlement/runs/987654321/reconciliation"  # no such run: refusals come before that


def _too_large(limit: int) -> dict[str, object]:
    return {
        "errors": [
            {"message": f"request body over {limit} bytes", "extensions": {"code": "PAYLOAD_TOO_LARGE"}}
        ]
    }


def _sans_request_id(body: dict[str, list[dict[str, dict[str, object]]]]) -> dict[str, object]:
    """The answer without the request id each error carries (tests/gateway/test_error_extensions.py)."""
    for error in body["errors"]:
        assert error["extensions"].pop("requestId")
    return body


def _past(limit: int, first: bytes) -> Iterator[bytes]:
    """`first`, then padding in 64 KiB chunks until just past `limit` bytes in all."""
    yield first
    sent = len(first)
    while sent <= limit:
        chunk = b" " * min(CHUNK, limit + 1 - sent)
        sent += len(chunk)
        yield chunk


async def test_a_chunked_graphql_body_is_read_under_the_limit_and_refused_past_it(server, live_admin_token):
    headers = {"Authorization": f"Bearer {live_admin_token}", "Content-Type": "application/json"}
    small = post_chunked(server, "/graphql", [b'{"query": ', b'"{ viewer { clientId } }"}'], headers)
    assert small.status == 200 and small.json()["data"]["viewer"]["clientId"]

    query = b'{"query": "{ viewer { clientId } }", "padding": "'
    big = post_chunked(server, "/graphql", _past(MAX_BODY_BYTES, query), headers, finish=False)
    assert big.status == 413
    assert _sans_request_id(big.json()) == _too_large(MAX_BODY_BYTES)


async def test_a_declared_length_over_the_limit_is_refused_before_the_token_is_checked(server):
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.post(
            "/graphql", content=b" " * (MAX_BODY_BYTES + 1), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413  # not 401: nothing but the declared length was looked at
    assert _sans_request_id(response.json()) == _too_large(MAX_BODY_BYTES)


async def test_a_chunked_reconciliation_file_is_refused_past_32_mib(server, partner_pair):
    cafe, _, _, _ = partner_pair
    token = await live_token(server, cafe.client_id, cafe.client_secret)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    small = post_chunked(server, UPLOAD, [b"orderId,kind,points,occurredAt\n"], headers)
    assert small.status == 400  # read and handed to the service, which knows no such run
    assert [e["code"] for e in small.json()["userErrors"]] == ["RUN_NOT_FOUND"]

    header = b"orderId,kind,points,occurredAt\n"
    big = post_chunked(server, UPLOAD, _past(MAX_UPLOAD_BYTES, header), headers, finish=False)
    assert big.status == 413
    assert _sans_request_id(big.json()) == _too_large(MAX_UPLOAD_BYTES)


async def test_who_may_upload_is_decided_before_the_file_is_read(server, live_admin_token, partner_pair):
    cafe, _, _, _ = partner_pair
    read_only = await live_token(server, cafe.client_id, cafe.client_secret, scope="settlement:read")
    opened = [b"orderId,kind,points,occurredAt\n"]
    denied = post_chunked(
        server, UPLOAD, opened, {"Authorization": f"Bearer {read_only}"}, finish=False, timeout=10
    )
    assert denied.status == 403
    assert denied.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    unnamed = post_chunked(
        server, UPLOAD, opened, {"Authorization": f"Bearer {live_admin_token}"}, finish=False, timeout=10
    )
    assert unnamed.status == 400  # an admin must say for which partner
    assert [(e["code"], e["field"]) for e in unnamed.json()["userErrors"]] == [("REQUIRED", "partnerId")]


async def test_oauth_forms_past_16_kib_get_413_whatever_the_framing(server, partner_pair):
    cafe, _, _, _ = partner_pair
    basic = base64.b64encode(f"{cafe.client_id}:{cafe.client_secret}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
    form = b"grant_type=client_credentials&token=" + b"a" * MAX_FORM_BYTES
    async with httpx.AsyncClient(base_url=server) as client:
        for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
            chunked = post_chunked(server, path, [form[: CHUNK // 8], form[CHUNK // 8 :]], headers)
            assert (path, chunked.status, _sans_request_id(chunked.json())) == (
                path,
                413,
                _too_large(MAX_FORM_BYTES),
            )
            declared = await client.post(path, content=form, headers=headers)
            assert (path, declared.status_code) == (path, 413)

    granted = post_chunked(server, "/oauth/token", [b"grant_type=", b"client_credentials"], headers)
    assert granted.status == 200 and granted.json()["access_token"]
