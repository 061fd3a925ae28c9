"""POST /oauth/token: client authentication, scopes, the RFC 9068 token it returns, errors."""

from __future__ import annotations

import base64

from joserfc import jwt
from joserfc.jwk import KeySet

from shared.access import ADMIN_SCOPES, PARTNER_SCOPES
from shared.settings import get_settings
from tests.identity.conftest import jwt_part


async def test_basic_and_form_authentication_both_issue_rfc9068_tokens(identity_app, partner):
    settings = get_settings()
    jtis = set()
    for form_auth in (False, True):
        response = await identity_app.token_response(
            partner.client_id, partner.client_secret, form_auth=form_auth
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == settings.token_ttl_seconds
        assert set(body["scope"].split()) == PARTNER_SCOPES
        header = jwt_part(body["access_token"], 0)
        assert header["typ"] == "at+jwt" and header["alg"] == "ES256" and header["kid"]
        claims = jwt_part(body["access_token"], 1)
        assert claims["iss"] == settings.issuer
        assert claims["aud"] == f"{settings.issuer}/graphql"
        assert claims["sub"] == claims["client_id"] == partner.client_id
        assert claims["partner_id"] == partner.id
        assert claims["scope"] == body["scope"]
        assert claims["exp"] - claims["iat"] == settings.token_ttl_seconds
        jtis.add(claims["jti"])
    assert len(jtis) == 2  # every token its own id, or revoking one would revoke both


async def test_tokens_verify_against_the_published_jwks(identity_app, partner):
    token = await identity_app.token(partner.client_id, partner.client_secret)
    document = (await identity_app.http.get("/.well-known/jwks.json")).json()
    for key in document["keys"]:
        assert {"kty", "crv", "x", "y", "kid", "alg", "use"} <= set(key)
        assert "d" not in key  # public halves only
    decoded = jwt.decode(token, KeySet.import_key_set(document), algorithms=["ES256"])
    assert decoded.claims["partner_id"] == partner.id


async def test_admin_tokens_carry_no_partner_id(identity_app, admin):
    token = await identity_app.token(admin.client_id, admin.client_secret)
    claims = jwt_part(token, 1)
    assert "partner_id" not in claims
    assert set(claims["scope"].split()) == ADMIN_SCOPES | {"members:read"}


async def test_a_client_may_ask_for_any_subset_of_its_scopes(identity_app, partner):
    response = await identity_app.token_response(
        partner.client_id, partner.client_secret, "points:earn members:read points:earn"
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "members:read points:earn"
    assert jwt_part(response.json()["access_token"], 1)["scope"] == "members:read points:earn"


async def test_asking_for_a_scope_the_client_lacks_is_invalid_scope(identity_app, partner):
    for scope in ("admin:partners", "points:earn admin:settlement", "points:fly"):
        response = await identity_app.token_response(partner.client_id, partner.client_secret, scope)
        assert response.status_code == 400, scope
        assert response.json()["error"] == "invalid_scope", response.text
        assert "access_token" not in response.json()


async def test_wrong_secret_and_unknown_client_are_invalid_client_401(identity_app, partner):
    wrong = await identity_app.token_response(partner.client_id, "not-the-secret")
    wrong_form = await identity_app.token_response(partner.client_id, "not-the-secret", form_auth=True)
    unknown = await identity_app.token_response("cl_nobody", partner.client_secret)
    for response in (wrong, wrong_form, unknown):
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"
        assert "access_token" not in response.json()


async def test_protocol_errors_are_rfc6749_json_never_tracebacks(identity_app, partner):
    auth = (partner.client_id, partner.client_secret)
    grant = await identity_app.http.post(
        "/oauth/token", data={"grant_type": "password", "username": "a", "password": "b"}, auth=auth
    )
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    missing = await identity_app.http.post("/oauth/token", data={}, auth=auth)
    # Authlib answers a missing grant_type as an unsupported one.
    assert missing.status_code == 400 and missing.json()["error"] == "unsupported_grant_type"
    garbled = await identity_app.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()},
    )
    assert garbled.status_code in (400, 401) and garbled.json()["error"] == "invalid_client"
    no_auth = await identity_app.http.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert no_auth.status_code in (400, 401) and no_auth.json()["error"] == "invalid_client"
    for response in (grant, missing, garbled, no_auth):
        assert response.headers["content-type"].startswith("application/json")
        assert "Traceback" not in response.text
