"""RFC 7009 revocation and RFC 7662 introspection: who may, what they learn, how fast it applies."""

from __future__ import annotations

import pytest

from services.identity import service as identity
from services.identity.verifier import TokenVerifier
from shared.errors import Unauthenticated
from shared.settings import get_settings
from tests.factories import make_partner
from tests.identity.conftest import ago, auth, clock_at, jwt_part


async def test_introspection_of_an_active_token(identity_app, partner):
    token = await identity_app.token(partner.client_id, partner.client_secret, "points:earn")
    response = await identity_app.introspect(token, auth(partner))
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    claims = jwt_part(token, 1)
    assert body == {
        "active": True,
        "scope": "points:earn",
        "client_id": partner.client_id,
        "sub": partner.client_id,
        "iss": get_settings().issuer,
        "aud": claims["aud"],
        "exp": claims["exp"],
        "iat": claims["iat"],
        "jti": claims["jti"],
        "token_type": "Bearer",
        "partner_id": partner.id,
    }


async def test_a_partner_sees_only_its_own_tokens_and_an_admin_sees_all(identity_app, partner, admin, db):
    other = await make_partner(db)
    token = await identity_app.token(partner.client_id, partner.client_secret)
    assert (await identity_app.introspect(token, auth(other))).json() == {"active": False}
    by_admin = (await identity_app.introspect(token, auth(admin))).json()
    assert by_admin["active"] is True and by_admin["partner_id"] == partner.id


async def test_invalid_expired_and_unauthenticated_introspection(identity_app, partner):
    ttl = get_settings().token_ttl_seconds
    with clock_at(ago(ttl + 5)):
        expired = await identity_app.token(partner.client_id, partner.client_secret)
    for token in (expired, "x.y.z", "garbage"):
        response = await identity_app.introspect(token, auth(partner))
        assert response.status_code == 200 and response.json() == {"active": False}
    nobody = await identity_app.http.post("/oauth/introspect", data={"token": expired})
    assert nobody.status_code == 401 and nobody.json()["error"] == "invalid_client"
    wrong = await identity_app.introspect(expired, (partner.client_id, "wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    missing = await identity_app.http.post("/oauth/introspect", data={}, auth=auth(partner))
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


async def test_revocation_applies_at_once_in_this_process(identity_app, partner, db):
    token = await identity_app.token(partner.client_id, partner.client_secret)
    bearer = f"Bearer {token}"
    # Another process that has read the revocation list already (cached for an hour).
    elsewhere = TokenVerifier(db, revocation_cache_seconds=3600, key_reload_interval=0)
    await identity_app.verifier.authenticate(bearer)
    await elsewhere.authenticate(bearer)

    response = await identity_app.revoke(token, auth(partner))
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"

    with pytest.raises(Unauthenticated, match="revoked"):
        await identity_app.verifier.authenticate(bearer)
    assert (await identity_app.introspect(token, auth(partner))).json() == {"active": False}
    # A process without a change listener learns it when its copy is re-read, not before.
    assert (await elsewhere.authenticate(bearer)).client_id == partner.client_id
    elsewhere.revocation_cache_seconds = 0
    with pytest.raises(Unauthenticated, match="revoked"):
        await elsewhere.authenticate(bearer)
    # Revoking twice is harmless.
    assert (await identity_app.revoke(token, auth(partner))).status_code == 200


async def test_nobody_revokes_another_partners_token(identity_app, partner, db):
    other = await make_partner(db)
    token = await identity_app.token(partner.client_id, partner.client_secret)
    refused = await identity_app.revoke(token, auth(other))
    assert refused.status_code == 200  # RFC 7009: the answer does not tell
    assert (await identity_app.verifier.authenticate(f"Bearer {token}")).client_id == partner.client_id
    assert (await identity_app.introspect(token, auth(partner))).json()["active"] is True
    garbage = await identity_app.revoke("not-a-token", auth(partner))
    assert garbage.status_code == 200
    nobody = await identity_app.http.post("/oauth/revoke", data={"token": token})
    assert nobody.status_code == 401


async def test_an_admin_may_revoke_any_token(identity_app, partner, admin):
    token = await identity_app.token(partner.client_id, partner.client_secret)
    assert (await identity_app.revoke(token, auth(admin))).status_code == 200
    with pytest.raises(Unauthenticated, match="revoked"):
        await identity_app.verifier.authenticate(f"Bearer {token}")


async def test_service_functions_work_without_http(db, partner):
    async with db.sessions() as session:
        client = await identity.load_client(session, partner.client_id)
        issued = await identity.issue_token(session, client, "points:redeem")
        token = issued["access_token"]
        assert issued["scope"] == "points:redeem"
        assert (await identity.introspect(session, token))["active"] is True
        revocation = await identity.revoke_token(session, token)
        await session.commit()
    assert revocation is not None and revocation.jti == jwt_part(token, 1)["jti"]
    async with db.sessions() as session:
        assert await identity.introspect(session, token) == {"active": False}
