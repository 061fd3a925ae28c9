"""The member sign-in through a real `coalition serve` process over TCP, with Authlib's client:
sign in, refresh, replay, and the family's access token refused by /graphql afterwards."""

from __future__ import annotations

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client

from shared.database import Database
from tests.e2e.conftest import free_port
from tests.identity.gateways import serving
from tests.identity.signin import PASSWORD, REDIRECT_URI, hidden_fields, member_app, member_with_password

VIEWER = {"query": "{ viewer { clientId scopes } }"}


async def test_sign_in_refresh_and_replay_on_a_real_server(
    database_url: str, db: Database, gateway: object
) -> None:
    client_id = await member_app(db)
    member = await member_with_password(db)
    port = free_port()
    with serving(database_url, port, f"http://127.0.0.1:{port}") as base:
        async with AsyncOAuth2Client(
            client_id=client_id,
            redirect_uri=REDIRECT_URI,
            scope="member",
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
            timeout=30,
        ) as oauth:
            verifier = generate_token(48)
            url, _ = oauth.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
            page = await oauth.request("GET", url, withhold_token=True)
            form = {**hidden_fields(page.text), "username": member.member_number, "password": PASSWORD}
            answer = await oauth.request("POST", f"{base}/oauth/authorize", data=form, withhold_token=True)
            assert answer.status_code == 302
            first = await oauth.fetch_token(
                f"{base}/oauth/token",
                authorization_response=answer.headers["location"],
                code_verifier=verifier,
            )
            assert (await oauth.post(f"{base}/graphql", json=VIEWER)).json()["data"]["viewer"]["scopes"] == [
                "member"
            ]
            second = await oauth.refresh_token(f"{base}/oauth/token", refresh_token=first["refresh_token"])
            assert second["refresh_token"] != first["refresh_token"]
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            replay = await http.post(
                "/oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": first["refresh_token"],
                    "client_id": client_id,
                },
            )
            assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
            refused = await http.post(
                "/graphql", json=VIEWER, headers={"Authorization": f"Bearer {second['access_token']}"}
            )
            assert refused.status_code == 401
