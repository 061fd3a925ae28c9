"""The gateway wires identity in: its /graphql refuses expired and revoked tokens with HTTP 401."""

from __future__ import annotations

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
