"""Admins disable clients and rotate their secrets: service rules, the audit log, GraphQL, the CLI.

Propagation to other processes is in test_propagation.py and test_two_gateways.py; here a verifier
learns of a change by re-reading (a cache period of 0) so the rules are tested on their own.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from services.identity import service as identity
from services.identity.models import OAuthClient
from services.identity.verifier import TokenVerifier
from shared.access import ADMIN_SCOPES, Principal
from shared.audit_log import AdminAuditEntry
from shared.database import Database
from shared.errors import DomainError, Forbidden, Unauthenticated
from tests.e2e.conftest import run_cli
from tests.factories import ADMIN, make_partner
from tests.identity.conftest import auth, jwt_part

DISABLE = """
mutation($input: DisableClientInput!) {
  disableClient(input: $input) {
    client { clientId name disabledAt partnerId }
    userErrors { code field message }
  }
}"""

ROTATE = """
mutation($input: RotateClientSecretInput!) {
  rotateClientSecret(input: $input) {
    clientSecret
    client { clientId secretRotatedAt disabledAt }
    userErrors { code field message }
  }
}"""

VIEWER = "{ viewer { clientId } }"


def _rereading(db: Database) -> TokenVerifier:
    """A verifier with no listener that re-reads on every request: it sees every commit."""
    return TokenVerifier(db, revocation_cache_seconds=0, key_reload_interval=0)


async def _refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as raised:
        await verifier.authenticate(f"Bearer {token}")
    return str(raised.value)


async def _audit(db: Database, action: str, client_id: str) -> list[AdminAuditEntry]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(AdminAuditEntry)
            .where(AdminAuditEntry.action == action, AdminAuditEntry.target == f"client:{client_id}")
            .order_by(AdminAuditEntry.id)
        )
        return list(rows)


async def test_a_disabled_client_gets_no_tokens_and_its_tokens_are_refused(identity_app, partner, db):
    token = await identity_app.token(partner.client_id, partner.client_secret)
    verifier = _rereading(db)
    assert (await verifier.authenticate(f"Bearer {token}")).client_id == partner.client_id

    client = await identity.disable_client(db, ADMIN, partner.client_id)
    assert client.client_id == partner.client_id and client.disabled_at is not None

    assert "disabled" in await _refused(verifier, token)
    assert (await identity_app.introspect(token, auth(partner))).status_code == 401  # no longer a client
    admin_creds = await _admin(db)
    assert (await identity_app.introspect(token, auth(admin_creds))).json() == {"active": False}
    refused = await identity_app.token_response(partner.client_id, partner.client_secret)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"

    # Disabling again changes nothing but is on the record too.
    again = await identity.disable_client(db, ADMIN, partner.client_id)
    assert again.disabled_at == client.disabled_at
    entries = await _audit(db, "client.disable", partner.client_id)
    assert [e.details["already_disabled"] for e in entries] == [False, True]
    assert entries[0].client_id == ADMIN.client_id and entries[0].details["partner_id"] == partner.id


async def test_rotating_a_secret_refuses_the_old_secret_and_every_token_issued_under_it(
    identity_app, partner, db
):
    before = await identity_app.token(partner.client_id, partner.client_secret)
    assert jwt_part(before, 1)["secret_version"] == 0
    verifier = _rereading(db)
    await verifier.authenticate(f"Bearer {before}")

    rotated = await identity.rotate_client_secret(db, ADMIN, partner.client_id)
    assert rotated.client_secret != partner.client_secret and len(rotated.client_secret) >= 43
    assert rotated.client.secret_rotated_at is not None and rotated.client.disabled_at is None

    assert "secret was rotated" in await _refused(verifier, before)
    old_secret = await identity_app.token_response(partner.client_id, partner.client_secret)
    assert old_secret.status_code == 401
    after = await identity_app.token(partner.client_id, rotated.client_secret)
    assert jwt_part(after, 1)["secret_version"] == 1
    assert (await verifier.authenticate(f"Bearer {after}")).partner_id == partner.id
    new_auth = (partner.client_id, rotated.client_secret)
    assert (await identity_app.introspect(before, new_auth)).json() == {"active": False}
    assert (await identity_app.introspect(after, new_auth)).json()["active"] is True

    async with db.sessions() as session:
        row = await session.scalar(select(OAuthClient).where(OAuthClient.client_id == partner.client_id))
    assert row.secret_hash == identity.hash_secret(rotated.client_secret)
    [entry] = await _audit(db, "client.rotate_secret", partner.client_id)
    assert entry.details == {"name": row.name, "partner_id": partner.id, "secret_version": 1}
    assert rotated.client_secret not in json.dumps(entry.details)


async def test_only_admins_with_admin_partners_manage_clients(db, partner):
    other = await make_partner(db)
    settlement_admin = Principal(client_id="ops", scopes=frozenset({"admin:settlement"}))
    for principal in (partner.principal, settlement_admin):
        for operation in (identity.disable_client, identity.rotate_client_secret):
            with pytest.raises(Forbidden):
                await operation(db, principal, other.client_id)
    assert await _audit(db, "client.disable", other.client_id) == []
    async with db.sessions() as session:
        assert await identity.authenticate_client(session, other.client_id, other.client_secret)


@pytest.mark.parametrize(
    ("client_id", "code"), [("cl_nobody", "CLIENT_NOT_FOUND"), ("  ", "REQUIRED"), ("x" * 201, "TOO_LONG")]
)
async def test_an_unknown_or_malformed_client_id_is_a_user_error_on_client_id(db, client_id, code):
    for operation in (identity.disable_client, identity.rotate_client_secret):
        with pytest.raises(DomainError) as raised:
            await operation(db, ADMIN, client_id)
        assert [(e.code, e.field) for e in raised.value.errors] == [(code, "clientId")]


async def _admin(db: Database) -> identity.ClientCredentials:
    async with db.sessions() as session:
        creds = await identity.create_client(session, name="client admin", scopes=sorted(ADMIN_SCOPES))
        await session.commit()
    return creds


async def test_graphql_disable_and_rotate(gateway, admin_token, db):
    partner = await make_partner(db)
    rotated = (await gateway.gql(admin_token, ROTATE, {"input": {"clientId": partner.client_id}}))["data"]
    payload = rotated["rotateClientSecret"]
    assert payload["userErrors"] == [] and payload["clientSecret"]
    assert payload["client"]["clientId"] == partner.client_id and payload["client"]["secretRotatedAt"]
    token = await gateway.token(partner.client_id, payload["clientSecret"])
    assert (await gateway.post(token, VIEWER)).status_code == 200
    rotated_again = await gateway.gql(admin_token, ROTATE, {"input": {"clientId": partner.client_id}})
    assert rotated_again["data"]["rotateClientSecret"]["userErrors"] == []
    # The gateway that made the change refuses the older token on the very next request.
    refused = await gateway.post(token, VIEWER)
    assert refused.status_code == 401 and "secret was rotated" in refused.text
    token = await gateway.token(
        partner.client_id, rotated_again["data"]["rotateClientSecret"]["clientSecret"]
    )
    assert (await gateway.post(token, VIEWER)).status_code == 200

    disabled = (await gateway.gql(admin_token, DISABLE, {"input": {"clientId": partner.client_id}}))["data"]
    client = disabled["disableClient"]["client"]
    assert disabled["disableClient"]["userErrors"] == []
    assert client["clientId"] == partner.client_id and client["disabledAt"] and client["partnerId"]
    refused = await gateway.post(token, VIEWER)
    assert refused.status_code == 401 and "disabled" in refused.text

    unknown = await gateway.gql(admin_token, DISABLE, {"input": {"clientId": "cl_nobody"}})
    assert unknown["data"]["disableClient"] == {
        "client": None,
        "userErrors": [
            {"code": "CLIENT_NOT_FOUND", "field": "clientId", "message": "no client has the id 'cl_nobody'"}
        ],
    }
    unknown = await gateway.gql(admin_token, ROTATE, {"input": {"clientId": "cl_nobody"}})
    assert unknown["data"]["rotateClientSecret"]["clientSecret"] is None
    assert unknown["data"]["rotateClientSecret"]["userErrors"][0]["code"] == "CLIENT_NOT_FOUND"


async def test_graphql_refuses_partners_managing_clients(gateway, db):
    partner = await make_partner(db)
    other = await make_partner(db)
    token = await gateway.partner_token(partner)
    for document in (DISABLE, ROTATE):
        body = await gateway.gql(token, document, {"input": {"clientId": other.client_id}})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert body["data"] is None
    assert (await gateway.post(await gateway.partner_token(other), VIEWER)).status_code == 200


async def test_cli_disables_clients_and_rotates_secrets(database_url, db):
    partner = await make_partner(db)
    rotated = run_cli(database_url, "clients", "rotate-secret", partner.client_id)
    assert rotated.returncode == 0, rotated.stderr
    body = json.loads(rotated.stdout)
    assert set(body) == {"client_id", "client_secret", "secret_rotated_at"}
    async with db.sessions() as session:
        assert await identity.authenticate_client(session, partner.client_id, body["client_secret"])
        assert not await identity.authenticate_client(session, partner.client_id, partner.client_secret)

    disabled = run_cli(database_url, "clients", "disable", partner.client_id)
    assert disabled.returncode == 0, disabled.stderr
    assert json.loads(disabled.stdout)["client_id"] == partner.client_id
    async with db.sessions() as session:
        assert not await identity.authenticate_client(session, partner.client_id, body["client_secret"])
    assert [e.client_id for e in await _audit(db, "client.disable", partner.client_id)] == ["cli"]
    assert [e.client_id for e in await _audit(db, "client.rotate_secret", partner.client_id)] == ["cli"]

    unknown = run_cli(database_url, "clients", "disable", "cl_nobody")
    assert unknown.returncode == 2 and "clientId" in unknown.stdout and "cl_nobody" in unknown.stdout
