"""Member sign-in: authorization code + PKCE at /oauth/authorize, the token endpoint's
authorization_code and refresh_token grants, against the real gateway app (ASGI) and PostgreSQL,
with Authlib's own OAuth client for the happy path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from starlette.applications import Starlette

from services.gateway.app import create_app
from services.identity import propagation
from services.identity import service as identity
from shared import clock
from shared.database import Database
from shared.ids import to_global_id
from shared.settings import get_settings
from tests.identity.conftest import clock_at, jwt_part
from tests.identity.signin import (
    REDIRECT_URI,
    authorize_params,
    exchange,
    hidden_fields,
    member_app,
    member_with_password,
    query_of,
    refresh,
    sign_in,
    submit_login,
)

BASE = "http://127.0.0.1"
VIEWER = "{ viewer { clientId scopes } }"


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[Starlette]:
    application = create_app(database_url)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def browser_at(app: Starlette) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """A cookie-keeping client coming from a given address (rate limits count per address)."""
    opened: list[httpx.AsyncClient] = []

    def make(address: str = "127.0.0.1") -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url=BASE
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
def browser(browser_at: Callable[[str], httpx.AsyncClient]) -> httpx.AsyncClient:
    return browser_at(f"198.51.100.{generate_token(2).__hash__() % 250 + 1}")


async def viewer(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {token}"})


async def test_pkce_happy_path_with_authlibs_client(app: Starlette, db: Database) -> None:
    client_id = await member_app(db)
    member = await member_with_password(db)
    async with AsyncOAuth2Client(
        client_id=client_id,
        redirect_uri=REDIRECT_URI,
        scope="member",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        transport=httpx.ASGITransport(app=app),
        base_url=BASE,
    ) as oauth:
        verifier = generate_token(48)
        url, state = oauth.create_authorization_url(f"{BASE}/oauth/authorize", code_verifier=verifier)
        page = await oauth.request("GET", url, withhold_token=True)
        assert page.status_code == 200
        assert 'name="csrf_token"' in page.text and "Test app &lt;&amp;&gt;" in page.text
        form = {**hidden_fields(page.text), "username": member.email, "password": "correct horse battery"}
        answer = await oauth.request("POST", "/oauth/authorize", data=form, withhold_token=True)
        assert answer.status_code == 302
        location = answer.headers["location"]
        assert location.startswith(REDIRECT_URI + "?") and query_of(location)["state"] == state
        token = await oauth.fetch_token(
            f"{BASE}/oauth/token", authorization_response=location, code_verifier=verifier
        )
        claims = jwt_part(token["access_token"], 1)
        assert claims["sub"] == to_global_id("Member", member.id)
        assert claims["scope"] == "member" and claims["client_id"] == client_id
        assert token["refresh_token"] and token["token_type"] == "Bearer"
        seen = await oauth.post("/graphql", json={"query": VIEWER})  # Authlib places the token
        assert seen.json()["data"]["viewer"] == {"clientId": client_id, "scopes": ["member"]}
        # A member token can do nothing a partner does.
        enrolled = await oauth.post(
            "/graphql",
            json={"query": 'mutation { enrollMember(input: {partnerCustomerRef: "x"}) { member { id } } }'},
        )
        assert enrolled.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_member_number_signs_in_too(browser: httpx.AsyncClient, db: Database) -> None:
    client_id = await member_app(db)
    member = await member_with_password(db)
    code, verifier = await sign_in(browser, client_id, member.member_number)
    assert (await exchange(browser, client_id, code, verifier)).status_code == 200


async def test_wrong_verifier_is_invalid_grant(browser: httpx.AsyncClient, db: Database) -> None:
    client_id = await member_app(db)
    member = await member_with_password(db)
    code, _ = await sign_in(browser, client_id, member.email)
    answer = await exchange(browser, client_id, code, generate_token(48))
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


async def test_code_for_another_redirect_uri_or_client_is_refused(
    browser: httpx.AsyncClient, db: Database
) -> None:
    client_id = await member_app(db)
    other = await member_app(db)
    member = await member_with_password(db)
    code, verifier = await sign_in(browser, client_id, member.email)
    answer = await exchange(browser, other, code, verifier)
    assert answer.json()["error"] == "invalid_grant"


async def test_reused_code_is_refused_and_revokes_its_tokens(
    browser: httpx.AsyncClient, db: Database
) -> None:
    client_id = await member_app(db)
    member = await member_with_password(db)
    code, verifier = await sign_in(browser, client_id, member.email)
    first = await exchange(browser, client_id, code, verifier)
    assert first.status_code == 200
    tokens = first.json()
    assert (await viewer(browser, tokens["access_token"])).status_code == 200
    again = await exchange(browser, client_id, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert (await viewer(browser, tokens["access_token"])).status_code == 401
    assert (await refresh(browser, client_id, tokens["refresh_token"])).json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "member points:earn"}, "invalid_scope"),
    ],
)
async def test_bad_requests_go_back_to_the_app_with_an_error(
    browser: httpx.AsyncClient, db: Database, overrides: dict[str, str | None], error: str
) -> None:
    client_id = await member_app(db)
    params = authorize_params(client_id, generate_token(48), **overrides)
    answer = await browser.get("/oauth/authorize", params=params)
    assert answer.status_code == 302
    query = query_of(answer.headers["location"])
    assert answer.headers["location"].startswith(REDIRECT_URI + "?")
    assert query["error"] == error and query["state"] == params["state"]
    assert "code" not in query


@pytest.mark.parametrize("field", ["redirect_uri", "client_id"])
async def test_unknown_client_or_redirect_uri_shows_a_page_not_a_redirect(
    browser: httpx.AsyncClient, db: Database, field: str
) -> None:
    client_id = await member_app(db)
    wrong = {"redirect_uri": "https://evil.example/cb", "client_id": "app_nobody"}[field]
    params = authorize_params(client_id, generate_token(48), **{field: wrong})
    answer = await browser.get("/oauth/authorize", params=params)
    assert answer.status_code == 400 and "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html") and field in answer.text


async def test_a_partner_client_is_no_member_app(
    browser: httpx.AsyncClient, gateway: object, db: Database
) -> None:
    from tests.factories import make_partner

    partner = await make_partner(db)
    params = authorize_params(partner.client_id, generate_token(48))
    answer = await browser.get("/oauth/authorize", params=params)
    assert answer.status_code == 400 and "location" not in answer.headers


@pytest.mark.parametrize("tamper", ["no token", "wrong token", "no cookie", "other request"])
async def test_csrf_missing_or_wrong_is_refused(
    browser: httpx.AsyncClient, db: Database, tamper: str
) -> None:
    client_id = await member_app(db)
    member = await member_with_password(db)
    params = authorize_params(client_id, generate_token(48))
    page = await browser.get("/oauth/authorize", params=params)
    form = {**hidden_fields(page.text), "username": member.email, "password": "correct horse battery"}
    if tamper == "no token":
        del form["csrf_token"]
    elif tamper == "wrong token":
        issued, _, mac = form["csrf_token"].partition(".")
        form["csrf_token"] = f"{issued}.{mac[::-1]}"
    elif tamper == "no cookie":
        browser.cookies.clear()
    else:  # the token of one request posted with another challenge
        form["code_challenge"] = authorize_params(client_id, generate_token(48))["code_challenge"]
    answer = await browser.post("/oauth/authorize", data=form)
    assert answer.status_code == 400 and "location" not in answer.headers
    assert "start again" in answer.text


async def test_wrong_password_shows_the_page_again_without_saying_which(
    browser: httpx.AsyncClient, db: Database
) -> None:
    client_id = await member_app(db)
    member = await member_with_password(db)
    params = authorize_params(client_id, generate_token(48))
    wrong = await submit_login(browser, params, member.email, "not the password")
    unknown = await submit_login(browser, params, "nobody@example.com", "not the password")
    for answer in (wrong, unknown):
        assert answer.status_code == 400 and "Wrong username or password." in answer.text
        assert 'name="csrf_token"' in answer.text  # the form again
    assert "nobody@example.com" in unknown.text


async def test_refresh_rotates_and_a_replay_revokes_the_family(
    browser: httpx.AsyncClient, db: Database
) -> None:
    client_id = await member_app(db)
    member = await member_with_password(db)
    code, verifier = await sign_in(browser, client_id, member.email)
    first = (await exchange(browser, client_id, code, verifier)).json()
    second = (await refresh(browser, client_id, first["refresh_token"])).json()
    assert second["refresh_token"] != first["refresh_token"] and second["scope"] == "member"
    third = (await refresh(browser, client_id, second["refresh_token"])).json()
    assert (await viewer(browser, third["access_token"])).status_code == 200
    # The first token was rotated: presenting it again revokes the whole family.
    replay = await refresh(browser, client_id, first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert (await refresh(browser, client_id, third["refresh_token"])).json()["error"] == "invalid_grant"
    for issued in (first, second, third):
        assert (await viewer(browser, issued["access_token"])).status_code == 401


async def test_refresh_needs_the_same_client(browser: httpx.AsyncClient, db: Database) -> None:
    client_id = await member_app(db)
    other = await member_app(db)
    member = await member_with_password(db)
    code, verifier = await sign_in(browser, client_id, member.email)
    first = (await exchange(browser, client_id, code, verifier)).json()
    assert (await refresh(browser, other, first["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await refresh(browser, client_id, first["refresh_token"])).status_code == 200


async def test_revoke_member_tokens_kills_every_token_of_the_member(
    browser: httpx.AsyncClient, db: Database
) -> None:
    client_id = await member_app(db)
    member = await member_with_password(db)
    code, verifier = await sign_in(browser, client_id, member.email)
    first = (await exchange(browser, client_id, code, verifier)).json()
    assert (await viewer(browser, first["access_token"])).status_code == 200
    async with db.sessions() as session:
        notice = await identity.revoke_member_tokens(session, member.id)
        await session.commit()
    await propagation.applied_everywhere(db, notice)
    assert (await viewer(browser, first["access_token"])).status_code == 401
    assert (await refresh(browser, client_id, first["refresh_token"])).json()["error"] == "invalid_grant"


async def test_failed_sign_ins_are_limited_per_username(browser: httpx.AsyncClient, db: Database) -> None:
    client_id = await member_app(db)
    member = await member_with_password(db)
    params = authorize_params(client_id, generate_token(48))
    for _ in range(get_settings().login_failures_per_username):
        assert (await submit_login(browser, params, member.email, "wrong password")).status_code == 400
    # Blocked now, even with the right password, and the code never issued.
    blocked = await submit_login(browser, params, member.email)
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text


async def test_failed_sign_ins_are_limited_per_address(
    browser_at: Callable[[str], httpx.AsyncClient], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGIN_FAILURES_PER_ADDRESS", "3")
    get_settings.cache_clear()
    try:
        client_id = await member_app(db)
        member = await member_with_password(db)
        params = authorize_params(client_id, generate_token(48))
        attacker = browser_at("203.0.113.77")
        for n in range(3):
            assert (await submit_login(attacker, params, f"guess{n}@example.com", "x")).status_code == 400
        assert (await submit_login(attacker, params, member.email)).status_code == 429
        # Another address still signs in.
        assert (await submit_login(browser_at("203.0.113.78"), params, member.email)).status_code == 302
    finally:
        monkeypatch.delenv("LOGIN_FAILURES_PER_ADDRESS")
        get_settings.cache_clear()


async def test_token_endpoint_refuses_a_secret_for_a_member_app(
    browser: httpx.AsyncClient, db: Database
) -> None:
    client_id = await member_app(db)
    answer = await browser.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "client_id": client_id,
            "client_secret": "s",
        },
    )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    # And a member app cannot use client credentials at all.
    answer = await browser.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "")
    )
    assert answer.status_code == 401


async def test_metadata_lists_the_member_endpoints(browser: httpx.AsyncClient) -> None:
    document = (await browser.get("/.well-known/oauth-authorization-server")).json()
    issuer = document["issuer"]
    assert document["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(
        document["grant_types_supported"]
    )
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert "none" in document["token_endpoint_auth_methods_supported"]


async def test_a_fresh_verifier_reads_the_member_revocation_from_the_database(
    gateway: object, db: Database
) -> None:
    from services.identity.verifier import TokenVerifier
    from shared.errors import Unauthenticated
    from tests.conftest import member_token

    member = await member_with_password(db)
    other = await member_with_password(db)
    token, others = await member_token(db, member.id), await member_token(db, other.id)
    async with db.sessions() as session:
        await identity.revoke_member_tokens(session, member.id)
        await session.commit()
    verifier = TokenVerifier(db)  # heard nothing: only the database can tell it
    with pytest.raises(Unauthenticated, match="revoked"):
        await verifier.verify(token)
    principal, _ = await verifier.verify(others)
    assert principal.member_id == other.id


async def test_a_sign_in_in_the_second_of_a_revocation_is_not_refused(
    browser: httpx.AsyncClient, db: Database
) -> None:
    """`iat` is whole seconds and a revocation refuses its whole second: a member who resets the
    password and signs in at once gets a token stamped the next second, which works; a second
    revocation within that second still covers it."""
    client_id = await member_app(db)
    member = await member_with_password(db)
    moment = clock.now().replace(microsecond=500_000) + timedelta(seconds=1)
    second = int(moment.timestamp())

    async def signed_in() -> dict[str, str]:
        code, verifier = await sign_in(browser, client_id, member.email)
        answer = await exchange(browser, client_id, code, verifier)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def revoke() -> None:
        async with db.sessions() as session:
            notice = await identity.revoke_member_tokens(session, member.id)
            await session.commit()
        await propagation.applied_everywhere(db, notice)

    with clock_at(moment):
        before = await signed_in()
        assert jwt_part(before["access_token"], 1)["iat"] == second
        await revoke()
        assert (await viewer(browser, before["access_token"])).status_code == 401
        after = await signed_in()
        assert jwt_part(after["access_token"], 1)["iat"] == second + 1
        assert (await viewer(browser, after["access_token"])).status_code == 200
        refreshed = (await refresh(browser, client_id, after["refresh_token"])).json()
        assert (await viewer(browser, refreshed["access_token"])).status_code == 200

        await revoke()  # again, still within the same second of the clock
        assert (await viewer(browser, after["access_token"])).status_code == 401
        assert (await viewer(browser, refreshed["access_token"])).status_code == 401
        last = await signed_in()
        assert jwt_part(last["access_token"], 1)["iat"] == second + 2
        assert (await viewer(browser, last["access_token"])).status_code == 200
