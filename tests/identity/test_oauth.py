"""The OAuth authorization server over HTTP: client credentials, JWTs, rotation, revocation."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from services.identity import service as identity
from services.identity.models import OAuthClient
from shared import clock
from shared.access import PARTNER_SCOPES
from shared.settings import get_settings
from tests.factories import make_partner


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def test_basic_and_form_authentication_both_issue_rfc9068_tokens(gateway, db):
    partner = await make_partner(db)
    by_basic = await gateway.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(partner.client_id, partner.client_secret),
    )
    by_form = await gateway.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": partner.client_id,
            "client_secret": partner.client_secret,
        },
    )
    for response in (by_basic, by_form):
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == get_settings().token_ttl_seconds
        header = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[0] + "=="))
        assert header["typ"] == "at+jwt" and header["alg"] == "ES256" and header["kid"]
        claims = _claims(body["access_token"])
        assert claims["client_id"] == claims["sub"] == partner.client_id
        assert claims["partner_id"] == partner.id
        assert set(claims["scope"].split()) == PARTNER_SCOPES
        assert claims["iss"] == get_settings().issuer
        assert claims["exp"] - claims["iat"] == get_settings().token_ttl_seconds


async def test_tokens_verify_against_the_published_jwks(gateway, db):
    partner = await make_partner(db)
    token = await gateway.partner_token(partner)
    jwks = (await gateway.client.get("/.well-known/jwks.json")).json()
    assert all("d" not in key for key in jwks["keys"])  # public halves only
    decoded = jwt.decode(token, KeySet.import_key_set(jwks))
    assert decoded.claims["partner_id"] == partner.id


async def test_scope_subsets_and_refusals(gateway, db):
    partner = await make_partner(db)
    token = await gateway.partner_token(partner, scope="points:earn members:read")
    assert _claims(token)["scope"] == "members:read points:earn"
    refused = await gateway.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "admin:partners"},
        auth=(partner.client_id, partner.client_secret),
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"


async def test_wrong_secret_unknown_client_and_wrong_grant(gateway, db):
    partner = await make_partner(db)
    wrong = await gateway.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(partner.client_id, "not-the-secret"),
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    unknown = await gateway.client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("cl_nobody", "x")
    )
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    grant = await gateway.client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "a", "password": "b"},
        auth=(partner.client_id, partner.client_secret),
    )
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    assert "Traceback" not in wrong.text + unknown.text + grant.text


async def test_secrets_are_stored_hashed(db):
    partner = await make_partner(db)
    async with db.sessions() as session:
        row = await session.scalar(select(OAuthClient).where(OAuthClient.client_id == partner.client_id))
    assert partner.client_secret not in row.secret_hash
    assert row.secret_hash == identity.hash_secret(partner.client_secret)


async def test_expired_tokens_are_refused(gateway, db):
    partner = await make_partner(db)
    token = await gateway.partner_token(partner)
    assert (await gateway.post(token, "{ viewer { clientId } }")).status_code == 200
    start = clock.now()
    clock.set_clock(lambda: start + timedelta(seconds=get_settings().token_ttl_seconds + 1))
    try:
        response = await gateway.post(token, "{ viewer { clientId } }")
    finally:
        clock.set_clock(None)
    assert response.status_code == 401
    assert "expired" in response.json()["errors"][0]["message"]


async def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(gateway, db):
    partner = await make_partner(db)
    old_token = await gateway.partner_token(partner)
    async with db.sessions() as session:
        new_kid = await identity.rotate_signing_key(session)
        await session.commit()
    new_token = await gateway.partner_token(partner)
    header = json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "=="))
    assert header["kid"] == new_kid
    kids = {k["kid"] for k in (await gateway.client.get("/.well-known/jwks.json")).json()["keys"]}
    assert new_kid in kids and len(kids) >= 2
    for token in (old_token, new_token):
        assert (await gateway.post(token, "{ viewer { clientId } }")).status_code == 200


async def test_revocation_takes_effect_at_once_and_introspection_reports_it(gateway, db):
    partner = await make_partner(db)
    other = await make_partner(db)
    token = await gateway.partner_token(partner)
    auth = (partner.client_id, partner.client_secret)
    active = (await gateway.client.post("/oauth/introspect", data={"token": token}, auth=auth)).json()
    assert active["active"] is True and active["partner_id"] == partner.id
    assert active["client_id"] == partner.client_id
    # Another partner can neither see nor revoke it.
    foreign = (
        await gateway.client.post(
            "/oauth/introspect", data={"token": token}, auth=(other.client_id, other.client_secret)
        )
    ).json()
    assert foreign == {"active": False}
    await gateway.client.post(
        "/oauth/revoke", data={"token": token}, auth=(other.client_id, other.client_secret)
    )
    assert (await gateway.post(token, "{ viewer { clientId } }")).status_code == 200

    revoked = await gateway.client.post("/oauth/revoke", data={"token": token}, auth=auth)
    assert revoked.status_code == 200
    response = await gateway.post(token, "{ viewer { clientId } }")
    assert response.status_code == 401 and "revoked" in response.json()["errors"][0]["message"]
    after = (await gateway.client.post("/oauth/introspect", data={"token": token}, auth=auth)).json()
    assert after == {"active": False}
    garbage = await gateway.client.post("/oauth/introspect", data={"token": "x.y.z"}, auth=auth)
    assert garbage.json() == {"active": False}
    unauthenticated = await gateway.client.post("/oauth/introspect", data={"token": token})
    assert unauthenticated.status_code == 401


async def test_authorization_server_metadata(gateway):
    doc = (await gateway.client.get("/.well-known/oauth-authorization-server")).json()
    issuer = get_settings().issuer
    assert doc["issuer"] == issuer
    assert doc["token_endpoint"] == f"{issuer}/oauth/token"
    assert doc["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert doc["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert doc["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert "points:earn" in doc["scopes_supported"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}


async def test_partner_clients_cannot_hold_admin_scopes(db):
    from shared.errors import DomainError

    async with db.sessions() as session:
        try:
            await identity.create_client(session, name="x", scopes=["admin:partners"], partner_id=1)
            raise AssertionError("accepted")
        except DomainError as exc:
            assert exc.errors[0].field == "scopes"
