"""Two real gateway processes (`coalition serve` on two free ports, one database, one issuer, as
behind a load balancer): a client disabled, or a secret rotated, through one of them is refused by
the other right after. Their periodic re-read is set to an hour, so only LISTEN/NOTIFY can explain
the refusal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from services.identity import service as identity
from shared.access import ADMIN_SCOPES
from tests.e2e.conftest import free_port
from tests.factories import make_partner
from tests.identity.gateways import serving
from tests.identity.test_client_admin import DISABLE, ROTATE, VIEWER

# The mutation answers once every listening gateway applied the change, so the first request is
# refused; this bound only keeps a failing test from polling for ever (the re-read is an hour away).
PROPAGATION_BOUND_SECONDS = 0.5


@pytest.fixture(scope="module")
def gateways(database_url: str) -> Iterator[tuple[str, str]]:
    first, second = free_port(), free_port()
    issuer = f"http://127.0.0.1:{first}"  # the public address both stand behind
    with ExitStack() as stack:
        yield (
            stack.enter_context(serving(database_url, first, issuer)),
            stack.enter_context(serving(database_url, second, issuer)),
        )


async def fetch_token(http: httpx.AsyncClient, base: str, client_id: str, secret: str) -> str:
    response = await http.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def gql(http: httpx.AsyncClient, base: str, token: str, query: str, variables: dict) -> httpx.Response:
    return await http.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )


async def _first_refusal(http: httpx.AsyncClient, base: str, token: str) -> tuple[httpx.Response, float, int]:
    """Ask `base` until it answers 401: the answer, seconds since the call, attempts made."""
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        response = await gql(http, base, token, VIEWER, {})
        elapsed = time.monotonic() - started
        if response.status_code == 401 or elapsed > PROPAGATION_BOUND_SECONDS:
            return response, elapsed, attempts


async def _admin_token(http: httpx.AsyncClient, base: str, db) -> str:
    async with db.sessions() as session:
        admin = await identity.create_client(session, name="gateways admin", scopes=sorted(ADMIN_SCOPES))
        await session.commit()
    return await fetch_token(http, base, admin.client_id, admin.client_secret)


async def test_a_client_disabled_through_one_gateway_is_refused_by_the_other(gateways, db):
    one, other = gateways
    partner = await make_partner(db)
    async with httpx.AsyncClient(timeout=10) as http:
        admin = await _admin_token(http, one, db)
        token = await fetch_token(http, one, partner.client_id, partner.client_secret)
        for base in (one, other):  # works on both, and both have verified (and cached) it
            assert (await gql(http, base, token, VIEWER, {})).status_code == 200

        disabled = await gql(http, one, admin, DISABLE, {"input": {"clientId": partner.client_id}})
        assert disabled.json()["data"]["disableClient"]["userErrors"] == [], disabled.text
        refused, elapsed, attempts = await _first_refusal(http, other, token)
        print(f"\ndisable heard by the other gateway after {elapsed * 1000:.1f} ms ({attempts} request(s))")
        assert refused.status_code == 401, f"still accepted {elapsed:.3f} s after the disable"
        assert attempts == 1, f"the first request after the disable was accepted ({attempts} needed)"
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "UNAUTHENTICATED" and "disabled" in error["message"]
        assert (await gql(http, one, token, VIEWER, {})).status_code == 401
        no_token = await http.post(
            f"{other}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(partner.client_id, partner.client_secret),
        )
        assert no_token.status_code == 401


async def test_a_secret_rotated_through_one_gateway_refuses_older_tokens_on_the_other(gateways, db):
    one, other = gateways
    partner = await make_partner(db)
    async with httpx.AsyncClient(timeout=10) as http:
        admin = await _admin_token(http, other, db)
        before = await fetch_token(http, other, partner.client_id, partner.client_secret)
        for base in (one, other):
            assert (await gql(http, base, before, VIEWER, {})).status_code == 200

        rotated = await gql(http, other, admin, ROTATE, {"input": {"clientId": partner.client_id}})
        secret = rotated.json()["data"]["rotateClientSecret"]["clientSecret"]
        refused, elapsed, attempts = await _first_refusal(http, one, before)
        print(f"\nrotation heard by the other gateway after {elapsed * 1000:.1f} ms ({attempts} request(s))")
        assert refused.status_code == 401, f"still accepted {elapsed:.3f} s after the rotation"
        assert attempts == 1, f"the first request after the rotation was accepted ({attempts} needed)"
        assert "secret was rotated" in refused.json()["errors"][0]["message"]

        after = await fetch_token(http, one, partner.client_id, secret)
        for base in (one, other):
            assert (await gql(http, base, after, VIEWER, {})).status_code == 200
