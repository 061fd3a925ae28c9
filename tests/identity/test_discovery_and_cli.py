"""RFC 8414 metadata, the JWKS document, and the identity commands of the `coalition` CLI."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from services.identity import service as identity
from services.identity.models import SigningKey
from shared.access import ADMIN_SCOPES, ALL_SCOPES
from shared.errors import Forbidden
from shared.settings import get_settings
from tests.e2e.conftest import run_cli
from tests.factories import ADMIN, make_partner, unique


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
    assert doc["grant_types_supported"] == ["client_credentials", "authorization_code", "refresh_token"]
    assert doc["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert set(doc["scopes_supported"]) == ALL_SCOPES
    methods = {"client_secret_basic", "client_secret_post"}
    assert set(doc["token_endpoint_auth_methods_supported"]) == methods | {"none"}  # member apps
    assert set(doc["revocation_endpoint_auth_methods_supported"]) == methods | {"none"}  # member apps
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


async def test_cli_lists_clients_with_partner_names_and_never_a_secret(database_url, db):
    partner = await make_partner(db, name=unique("Pageturner Books"))
    admin = json.loads(run_cli(database_url, "clients", "create-admin", "--name", unique("ops")).stdout)
    await identity.disable_client(db, ADMIN, admin["client_id"])
    secrets = [partner.client_secret, admin["client_secret"]]
    secrets += [identity.hash_secret(s) for s in secrets]

    listed = run_cli(database_url, "clients", "list")
    assert listed.returncode == 0, listed.stderr
    assert not [s for s in secrets if s in listed.stdout]
    lines = listed.stdout.splitlines()
    header = lines[0]
    row = next(line for line in lines if line.startswith(partner.client_id))
    assert row[header.index("partner") :].startswith(f"{partner.name} ({partner.id})")
    assert "points:earn" in row[header.index("scopes") :]
    assert row[header.index("disabled") :].strip() == ""
    disabled = next(line for line in lines if line.startswith(admin["client_id"]))
    assert disabled[header.index("partner") :].startswith("-")
    assert disabled[header.index("disabled") :].strip()[:4].isdigit()  # when it was disabled

    as_json = run_cli(database_url, "clients", "list", "--json")
    assert as_json.returncode == 0 and not [s for s in secrets if s in as_json.stdout]
    clients = {c["client_id"]: c for c in json.loads(as_json.stdout)}
    assert clients[partner.client_id]["partner_name"] == partner.name
    assert clients[partner.client_id]["disabled_at"] is None
    assert clients[admin["client_id"]]["partner_id"] is None
    assert clients[admin["client_id"]]["disabled_at"] is not None
    assert not [k for c in clients.values() for k in c if k in ("client_secret", "secret_hash")]


async def test_listing_clients_is_for_admins(db):
    partner = await make_partner(db)
    with pytest.raises(Forbidden):
        await identity.list_clients(db, partner.principal)
    assert partner.client_id in {c.client_id for c in await identity.list_clients(db, ADMIN)}
