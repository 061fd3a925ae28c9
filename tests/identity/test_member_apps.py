"""Registering member apps: `coalition clients create-app` and the admins' `createMemberApp`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from services.identity.member_apps import redirect_uri_problem
from services.identity.models import OAuthClient
from shared.database import Database
from tests.conftest import Gateway
from tests.e2e.conftest import run_cli

CREATE = """
mutation($input: CreateMemberAppInput!) {
  createMemberApp(input: $input) { clientId redirectUris userErrors { code field message } }
}
"""


async def test_cli_create_app_prints_the_client_id(database_url: str, db: Database) -> None:
    done = run_cli(
        database_url,
        "clients", "create-app", "--name", "Phone app",
        "--redirect-uri", "https://app.example/cb", "--redirect-uri", "http://127.0.0.1:8765/cb",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    client_id = json.loads(done.stdout)["client_id"]
    async with db.sessions() as session:
        row = await session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
    assert row is not None and row.public and row.allowed_scopes == ["member"]
    assert row.redirect_uris == ["https://app.example/cb", "http://127.0.0.1:8765/cb"]
    refused = run_cli(
        database_url, "clients", "create-app", "--name", "x", "--redirect-uri", "http://app.example/cb"
    )
    assert refused.returncode != 0 and "redirectUris" in refused.stdout + refused.stderr


async def test_admins_create_member_apps(gateway: Gateway, admin_token: str) -> None:
    answer = await gateway.gql(
        admin_token, CREATE, {"input": {"name": "Web app", "redirectUris": ["https://app.example/cb"]}}
    )
    payload = answer["data"]["createMemberApp"]
    assert payload["userErrors"] == [] and payload["clientId"].startswith("app_")
    assert payload["redirectUris"] == ["https://app.example/cb"]


async def test_bad_redirect_uris_are_user_errors_naming_the_field(gateway: Gateway, admin_token: str) -> None:
    answer = await gateway.gql(
        admin_token,
        CREATE,
        {"input": {"name": "Web app", "redirectUris": ["https://app.example/cb#frag", "ftp://x/cb"]}},
    )
    payload = answer["data"]["createMemberApp"]
    assert payload["clientId"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("INVALID", "redirectUris"),
        ("INVALID", "redirectUris"),
    ]
    empty = await gateway.gql(admin_token, CREATE, {"input": {"name": " ", "redirectUris": []}})
    fields = {e["field"] for e in empty["data"]["createMemberApp"]["userErrors"]}
    assert fields == {"name", "redirectUris"}


async def test_partners_cannot_create_member_apps(gateway: Gateway, partner_pair: tuple) -> None:
    _, token, _, _ = partner_pair
    answer = await gateway.gql(
        token, CREATE, {"input": {"name": "x", "redirectUris": ["https://a.example/"]}}
    )
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("https://app.example/cb", True),
        ("https://app.example/cb?x=1", True),
        ("http://localhost:3000/cb", True),
        ("http://[::1]:3000/cb", True),
        ("http://127.0.0.1/cb", True),
        ("http://app.example/cb", False),
        ("https://app.example/cb#x", False),
        ("/relative/cb", False),
        ("https://user:pw@app.example/cb", False),
        ("com.example.app:/cb", False),
        ("https://app.example/c b", False),
    ],
)
def test_redirect_uri_rules(uri: str, ok: bool) -> None:
    assert (redirect_uri_problem(uri) is None) is ok
