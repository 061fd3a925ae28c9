"""POST /oauth/token: client authentication, scopes, the RFC 9068 token it returns, errors."""

from __future__ import annotations

import base64

from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, update

from services.identity.models import OAuthClient
from shared.access import ADMIN_SCOPES, PARTNER_SCOPES
from shared.settings import get_settings
from tests.factories import make_partner
from tests.identity.conftest import auth, count_statements, jwt_part


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


async def test_two_authentication_methods_in_one_request_are_invalid_request(identity_app, partner, admin):
    """RFC 6749 section 2.3: a client MUST NOT use more than one authentication method per request,
    even when both carry its own, correct credentials."""
    basic = (partner.client_id, partner.client_secret)
    grant = {"grant_type": "client_credentials"}
    both = await identity_app.http.post(
        "/oauth/token", data=grant | {"client_secret": partner.client_secret}, auth=basic
    )
    both_full = await identity_app.http.post(
        "/oauth/token",
        data=grant | {"client_id": partner.client_id, "client_secret": partner.client_secret},
        auth=basic,
    )
    other_id = await identity_app.http.post(
        "/oauth/token", data=grant | {"client_id": admin.client_id}, auth=basic
    )
    # Basic with a wrong secret and the right one in the form: not "try the next method".
    fallback = await identity_app.http.post(
        "/oauth/token",
        data=grant | {"client_id": partner.client_id, "client_secret": partner.client_secret},
        auth=(partner.client_id, "wrong"),
    )
    for response in (both, both_full, other_id, fallback):
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_request"
        assert "one client authentication method" in response.json()["error_description"]
        assert response.headers["cache-control"] == "no-store"
    # Naming the same client in the form as in Basic is no second method.
    same_id = await identity_app.http.post(
        "/oauth/token", data=grant | {"client_id": partner.client_id}, auth=basic
    )
    assert same_id.status_code == 200, same_id.text


async def test_revocation_and_introspection_also_refuse_two_authentication_methods(identity_app, partner):
    token = await identity_app.token(partner.client_id, partner.client_secret)
    for path in ("/oauth/revoke", "/oauth/introspect"):
        response = await identity_app.http.post(
            path,
            data={"token": token, "client_id": partner.client_id, "client_secret": partner.client_secret},
            auth=(partner.client_id, partner.client_secret),
        )
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"] == "invalid_request"
    assert (await identity_app.introspect(token, auth(partner))).json()["active"] is True


async def test_unknown_disabled_and_wrong_secret_answers_are_byte_identical(identity_app, partner, db):
    disabled = await make_partner(db)
    async with db.sessions() as session:
        await session.execute(
            update(OAuthClient)
            .where(OAuthClient.client_id == disabled.client_id)
            .values(disabled_at=func.now())
        )
        await session.commit()
    for form_auth in (False, True):
        answers = [
            await identity_app.token_response(partner.client_id, "not-the-secret", form_auth=form_auth),
            await identity_app.token_response("cl_nobody", partner.client_secret, form_auth=form_auth),
            await identity_app.token_response(
                disabled.client_id, disabled.client_secret, form_auth=form_auth
            ),
        ]
        first = answers[0]
        assert first.status_code == 401 and first.json()["error"] == "invalid_client"
        assert first.headers["cache-control"] == "no-store"
        for other in answers[1:]:
            assert (other.status_code, dict(other.headers), other.content) == (
                first.status_code,
                dict(first.headers),
                first.content,
            )


async def test_unknown_and_wrong_secret_do_the_same_database_work(identity_app, partner, db):
    """Timing: both run the same statements and compare a secret hash; neither loads a key."""
    seen = []
    for client_id, secret in ((partner.client_id, "not-the-secret"), ("cl_nobody", partner.client_secret)):
        with count_statements(db) as statements:
            response = await identity_app.token_response(client_id, secret)
        assert response.status_code == 401
        seen.append(statements)
    assert seen[0] == seen[1] and len(seen[0]) == 1 and "oauth_clients" in seen[0][0]


async def test_a_parameter_sent_twice_is_invalid_request(identity_app, partner):
    response = await identity_app.http.post(
        "/oauth/token",
        content="grant_type=client_credentials&scope=points:earn&scope=admin:partners",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(partner.client_id, partner.client_secret),
    )
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "parameters sent more than once: scope",
    }
