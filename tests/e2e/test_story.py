"""End to end over real HTTP: real server, real OAuth client, the coalition's core story."""

from __future__ import annotations

import uuid

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client

from services.identity import service as identity
from shared.access import ADMIN_SCOPES
from tests.e2e.conftest import run_cli
from tests.gateway import queries as q


async def _client(base: str, client_id: str, secret: str) -> AsyncOAuth2Client:
    client = AsyncOAuth2Client(client_id, secret, token_endpoint=f"{base}/oauth/token", base_url=base)
    await client.fetch_token()
    return client


async def _gql(client: AsyncOAuth2Client, query: str, variables: dict) -> dict:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def test_earn_at_the_cafe_redeem_at_the_airline_refund_at_the_cafe(server, db, database_url):
    async with db.sessions() as session:
        admin = await identity.create_client(session, name="e2e admin", scopes=sorted(ADMIN_SCOPES))
        await session.commit()
    metadata = httpx.get(f"{server}/.well-known/oauth-authorization-server").json()
    assert metadata["token_endpoint"] == f"{server}/oauth/token"

    admin_client = await _client(server, admin.client_id, admin.client_secret)
    suffix = uuid.uuid4().hex[:6]
    creds = {}
    for name, price in (("Café", "0.008"), ("Airline", "0.010")):
        data = await _gql(
            admin_client,
            q.CREATE_PARTNER,
            {
                "input": {
                    "name": f"{name} {suffix}",
                    "currency": "EUR",
                    "issuePrice": "0.010",
                    "redeemPrice": price,
                    "earnRate": "1",
                }
            },
        )
        creds[name] = data["createPartner"]["credentials"]
    cafe = await _client(server, creds["Café"]["clientId"], creds["Café"]["clientSecret"])
    airline = await _client(server, creds["Airline"]["clientId"], creds["Airline"]["clientSecret"])

    number = (await _gql(cafe, q.ENROLL, {"input": {"partnerCustomerRef": "c-1"}}))["enrollMember"]["member"][
        "memberNumber"
    ]
    earned = await _gql(
        cafe,
        q.PURCHASE,
        {
            "input": {
                "idempotencyKey": "e2e-1",
                "memberNumber": number,
                "orderId": "A-1",
                "amount": {"amount": "120.00", "currency": "EUR"},
            }
        },
    )
    assert earned["recordPurchase"]["pointsEarned"] == 120
    # The airline links the member under its own customer ref before spending their points.
    await _gql(airline, q.ENROLL, {"input": {"partnerCustomerRef": "a-1", "memberNumber": number}})
    redeemed = await _gql(
        airline,
        q.REDEEM,
        {"input": {"idempotencyKey": "e2e-2", "memberNumber": number, "points": 100, "orderId": "B-1"}},
    )
    assert redeemed["redeemPoints"]["redemption"]["value"] == {"amount": "1.00", "currency": "EUR"}
    refund = await _gql(
        cafe,
        q.REVERSE,
        {
            "input": {
                "idempotencyKey": "e2e-3",
                "orderId": "A-1",
                "amount": {"amount": "60.00", "currency": "EUR"},
            }
        },
    )
    assert refund["reversePurchase"]["reversal"]["points"] == 60
    member = (await _gql(cafe, q.MEMBER, {"n": number}))["member"]
    assert member["balance"] == {"available": -40, "pending": 0}

    for client in (admin_client, cafe, airline):
        await client.aclose()
    audit = run_cli(database_url, "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "all hold" in audit.stdout
