"""RFC 8414 metadata, the JWKS document, and the identity commands of the `coalition` CLI."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from sqlalchemy import select

from services.identity import service as identity
from services.identity.models import SigningKey
from shared.access import ADMIN_SCOPES, ALL_SCOPES
from shared.settings import get_settings
from tests.e2e.conftest import run_cli


async def test_authorization_server_metadata(identity_app):
    response = await identity_app.http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    doc = response.json()
    issuer = get_settings().issuer
    assert doc["issuer"] == issuer
    assert doc["token_endpoint"] == f"{issuer}/oauth/token"
    assert doc["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert doc["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert doc["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert set(doc["scopes_supported"]) == ALL_SCOPES
    methods = {"client_secret_basic", "client_secret_post"}
    assert set(doc["token_endpoint_auth_methods_supported"]) == methods
    assert set(doc["revocation_endpoint_auth_methods_supported"]) == methods
    assert set(doc["introspection_endpoint_auth_methods_supported"]) == methods
    assert doc["access_token_signing_alg_values_supported"] == ["ES256"]
    # Every advertised endpoint is served here (unauthenticated POSTs are refused, not missing).
    for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        answer = await identity_app.http.post(urlsplit(doc[name]).path, data={})
        assert answer.status_code in (400, 401), name
    assert (await identity_app.http.get(urlsplit(doc["jwks_uri"]).path)).status_code == 200


async def test_jwks_publishes_the_active_key(identity_app, db):
    async with db.sessions() as session:
        active = await session.scalar(select(SigningKey.kid).where(SigningKey.retired_at.is_(None)))
        assert await identity.jwks(session) == (await identity_app.http.get("/.well-known/jwks.json")).json()
    kids = [k["kid"] for k in (await identity_app.http.get("/.well-known/jwks.json")).json()["keys"]]
    assert kids[0] == active


async def test_cli_creates_admin_clients_and_rotates_keys(database_url, db):
    created = run_cli(database_url, "clients", "create-admin", "--name", "cli ops")
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert set(body) == {"client_id", "client_secret", "scopes"}
    assert body["scopes"] == sorted(ADMIN_SCOPES | {"members:read"})
    async with db.sessions() as session:
        assert await identity.authenticate_client(session, body["client_id"], body["client_secret"])

    narrow = run_cli(database_url, "clients", "create-admin", "--name", "ro", "--scopes", "settlement:read")
    assert narrow.returncode == 0 and json.loads(narrow.stdout)["scopes"] == ["settlement:read"]
    bad = run_cli(database_url, "clients", "create-admin", "--name", "x", "--scopes", "points:fly")
    assert bad.returncode == 2 and "scopes" in bad.stdout

    rotated = run_cli(database_url, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    kid = json.loads(rotated.stdout)["kid"]
    async with db.sessions() as session:
        active = list(await session.scalars(select(SigningKey.kid).where(SigningKey.retired_at.is_(None))))
    assert active == [kid]
