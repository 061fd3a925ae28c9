"""Live balances across gateway processes: two `coalition serve` behind one issuer name (as behind
a load balancer), a subscriber on A, the points moved through B's API. Nothing crosses between
them but PostgreSQL NOTIFY."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import get_settings
from tests.conftest import member_token
from tests.e2e.conftest import Gateway, start_gateway
from tests.factories import enroll, make_partner
from tests.gateway.queries import PURCHASE
from tests.graphql_ws import subscribed

BALANCE = "subscription { balanceChanged { available pending held reason occurredAt } }"
TILL = "subscription($n: String!) { memberBalanceChanged(memberNumber: $n) { available reason } }"


@pytest.fixture(scope="module")
def pair(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Gateway]]:
    logs: Path = tmp_path_factory.mktemp("live")
    issuer = get_settings().issuer
    a = start_gateway(database_url, logs / "a.log", issuer=issuer)
    try:
        b = start_gateway(database_url, logs / "b.log", issuer=issuer)
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


def ws(gateway: Gateway) -> str:
    return f"ws://127.0.0.1:{gateway.port}/graphql"


async def token_from(gateway: Gateway, partner: Any) -> str:
    async with httpx.AsyncClient(base_url=gateway.base) as client:
        response = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(partner.client_id, partner.client_secret),
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def earn_through(gateway: Gateway, token: str, member_number: str, amount: str) -> None:
    variables = {
        "input": {
            "idempotencyKey": str(uuid.uuid4()),
            "memberNumber": member_number,
            "orderId": str(uuid.uuid4()),
            "amount": {"amount": amount, "currency": "EUR"},
        }
    }
    async with httpx.AsyncClient(base_url=gateway.base) as client:
        response = await client.post(
            "/graphql",
            json={"query": PURCHASE, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    body = response.json()
    assert response.status_code == 200 and body["data"]["recordPurchase"]["userErrors"] == [], body


async def test_a_subscriber_on_one_gateway_hears_an_earn_made_through_another(db, pair):
    a, b = pair
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    cafe_at_b = await token_from(b, cafe)
    async with subscribed(ws(a), await member_token(db, member.id), BALANCE) as (socket, op):
        assert (await socket.receive())["payload"]["data"]["balanceChanged"]["reason"] == "CURRENT"
        seen = []
        for amount in ("10", "2.50", "7"):
            await earn_through(b, cafe_at_b, member.member_number, amount)
            message = await socket.receive()
            assert message["type"] == "next" and message["id"] == op, message
            seen.append(message["payload"]["data"]["balanceChanged"])
    assert [(e["available"], e["reason"]) for e in seen] == [(10, "EARN"), (12, "EARN"), (19, "EARN")]


async def test_a_till_on_one_gateway_watches_a_member_earning_through_another(db, pair):
    a, b = pair
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    till = await token_from(a, cafe)
    async with subscribed(ws(a), till, TILL, {"n": member.member_number}) as (socket, _op):
        assert (await socket.receive())["payload"]["data"]["memberBalanceChanged"]["available"] == 0
        await earn_through(b, await token_from(b, cafe), member.member_number, "25")
        message = await socket.receive()
    assert message["payload"]["data"]["memberBalanceChanged"] == {"available": 25, "reason": "EARN"}


async def test_a_token_revoked_through_one_gateway_closes_its_socket_on_another(db, pair):
    a, b = pair
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    till = await token_from(b, cafe)
    async with subscribed(ws(a), till, TILL, {"n": member.member_number}) as (socket, _op):
        await socket.receive()
        async with httpx.AsyncClient(base_url=b.base) as client:
            response = await client.post(
                "/oauth/revoke", data={"token": till}, auth=(cafe.client_id, cafe.client_secret)
            )
        assert response.status_code == 200
        closed = await socket.closed(seconds=3)
    assert closed.code == 4401
