"""The gateway wires identity in: its /graphql refuses expired and revoked tokens with HTTP 401."""

from __future__ import annotations

from services.identity import keys, tokens
from shared.settings import get_settings
from tests.factories import make_partner
from tests.identity.conftest import ago, clock_at

VIEWER = "{ viewer { clientId } }"


async def test_the_gateway_refuses_expired_and_revoked_tokens(gateway, db):
    partner = await make_partner(db)
    with clock_at(ago(get_settings().token_ttl_seconds + 5)):
        expired = await gateway.partner_token(partner)
    token = await gateway.partner_token(partner)
    assert (await gateway.post(token, VIEWER)).status_code == 200

    refused = await gateway.post(expired, VIEWER)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "expired" in refused.json()["errors"][0]["message"]

    revoked = await gateway.client.post(
        "/oauth/revoke", data={"token": token}, auth=(partner.client_id, partner.client_secret)
    )
    assert revoked.status_code == 200
    after = await gateway.post(token, VIEWER)
    assert after.status_code == 401 and "revoked" in after.json()["errors"][0]["message"]


async def test_a_token_with_a_non_integer_partner_id_is_a_401_not_a_500(gateway, db):
    partner = await make_partner(db)
    async with db.sessions() as session:
        key = await keys.active_signing_key(session)
    for value in ("abc", 1.5, True, {"id": partner.id}):
        claims = tokens.access_token_claims(
            client_id=partner.client_id, scope="points:earn", partner_id=partner.id
        ) | {"partner_id": value}
        response = await gateway.post(tokens.sign(claims, key), VIEWER)
        assert response.status_code == 401, (value, response.text)
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert "'partner_id'" in error["message"] and "integer" in error["message"]
