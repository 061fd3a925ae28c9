"""RFC 7009 revocation by a member app (a public client: its client_id, no secret), as the web
app's "Sign out" does it: against the real gateway app and PostgreSQL, the tokens from a real
sign-in (authorization code + PKCE)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from services.gateway.app import create_app
from shared.database import Database
from tests.factories import make_partner
from tests.identity.signin import exchange, member_app, member_with_password, refresh, sign_in

BASE = "http://127.0.0.1"
VIEWER = "{ viewer { clientId scopes } }"


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[Starlette]:
    application = create_app(database_url)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def browser(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.200", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def _viewer(browser: httpx.AsyncClient, token: str) -> int:
    answer = await browser.post(
        "/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {token}"}
    )
    return answer.status_code


async def _signed_in(browser: httpx.AsyncClient, client_id: str, username: str) -> dict[str, str]:
    code, verifier = await sign_in(browser, client_id, username)
    answer = await exchange(browser, client_id, code, verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _revoke(
    browser: httpx.AsyncClient, client_id: str, token: str, hint: str | None = None
) -> httpx.Response:
    form = {"token": token, "client_id": client_id}
    if hint is not None:
        form["token_type_hint"] = hint
    return await browser.post("/oauth/revoke", data=form)


async def test_an_app_revoking_its_refresh_token_ends_that_sign_in(
    browser: httpx.AsyncClient, db: Database
) -> None:
    client_id = await member_app(db)
    member = await member_with_password(db)
    first = await _signed_in(browser, client_id, member.email)
    rotated = (await refresh(browser, client_id, first["refresh_token"])).json()
    phone = await _signed_in(browser, client_id, member.member_number)  # the member's other device
    assert await _viewer(browser, first["access_token"]) == 200

    answer = await _revoke(browser, client_id, rotated["refresh_token"], "refresh_token")
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["cache-control"] == "no-store"
    # The whole family: its current refresh token, and every access token issued with it.
    again = await refresh(browser, client_id, rotated["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert await _viewer(browser, rotated["access_token"]) == 401
    assert await _viewer(browser, first["access_token"]) == 401
    # Only that sign-in: the other device stays signed in.
    assert await _viewer(browser, phone["access_token"]) == 200
    assert (await refresh(browser, client_id, phone["refresh_token"])).status_code == 200
    # Revoking again, or without the hint, is the same quiet 200.
    assert (await _revoke(browser, client_id, rotated["refresh_token"])).status_code == 200


async def test_an_app_revokes_its_own_access_token(browser: httpx.AsyncClient, db: Database) -> None:
    client_id = await member_app(db)
    member = await member_with_password(db)
    tokens = await _signed_in(browser, client_id, member.email)
    answer = await _revoke(browser, client_id, tokens["access_token"], "access_token")
    assert answer.status_code == 200
    assert await _viewer(browser, tokens["access_token"]) == 401
    # An access token is only itself (RFC 7009 leaves the grant alone then): the app refreshes.
    renewed = await refresh(browser, client_id, tokens["refresh_token"])
    assert renewed.status_code == 200 and await _viewer(browser, renewed.json()["access_token"]) == 200


async def test_an_app_cannot_revoke_another_apps_tokens(browser: httpx.AsyncClient, db: Database) -> None:
    app_a, app_b = await member_app(db), await member_app(db)
    member = await member_with_password(db)
    tokens = await _signed_in(browser, app_a, member.email)
    for token, hint in ((tokens["refresh_token"], "refresh_token"), (tokens["access_token"], None)):
        answer = await _revoke(browser, app_b, token, hint)
        assert answer.status_code == 200 and answer.content == b""  # RFC 7009: nothing told
    assert await _viewer(browser, tokens["access_token"]) == 200
    renewed = await refresh(browser, app_a, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text


async def test_who_may_revoke_without_a_secret(browser: httpx.AsyncClient, db: Database) -> None:
    client_id = await member_app(db)
    partner = await make_partner(db)
    # An unknown id, and a confidential client's id without its secret, get the answer a wrong
    # secret gets, byte for byte.
    wrong_secret = await browser.post("/oauth/revoke", data={"token": "x"}, auth=(partner.client_id, "wrong"))
    unknown = await _revoke(browser, "app_nobody", "x")
    confidential = await _revoke(browser, partner.client_id, "x")
    assert wrong_secret.status_code == unknown.status_code == confidential.status_code == 401
    assert unknown.content == confidential.content == wrong_secret.content
    assert unknown.json()["error"] == "invalid_client"
    missing = await browser.post("/oauth/revoke", data={"client_id": client_id})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    garbage = await _revoke(browser, client_id, "not a token at all")
    assert garbage.status_code == 200
