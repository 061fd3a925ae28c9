"""Live balances over graphql-transport-ws, against a real `coalition serve`: who may subscribe,
what closes a socket, that every kind of points move notifies, and that nothing else does.

The server shares this process's token issuer, so tokens minted here (`member_token`) and revoked
here are the server's own; points move through the services in this process, and the server hears
of them only through PostgreSQL NOTIFY.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from services.identity import service as identity
from services.ledger import erasure, live
from services.ledger.live import BalanceChangeReason
from services.ledger.scheduled import activate_due_lots, expire_due_lots, release_expired_holds
from shared import clock, sql
from shared.database import Database
from shared.ids import to_global_id
from shared.settings import get_settings
from tests.conftest import member_token
from tests.e2e.conftest import Gateway, start_gateway
from tests.factories import (
    ADMIN,
    authorize,
    cancel,
    capture,
    earn,
    enroll,
    make_partner,
    redeem,
    reverse,
    void,
)
from tests.graphql_ws import Closed, GraphQLSocket, open_socket, subscribed

BALANCE = "subscription { balanceChanged { available pending held reason occurredAt } }"
PARTNER_BALANCE = (
    "subscription($n: String!) { memberBalanceChanged(memberNumber: $n) { available pending held reason } }"
)


@pytest.fixture(scope="module")
def ws_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = start_gateway(
        database_url, tmp_path_factory.mktemp("ws") / "gateway.log", issuer=get_settings().issuer
    )
    try:
        yield gateway
    finally:
        gateway.stop()


def ws_url(gateway: Gateway) -> str:
    return f"ws://127.0.0.1:{gateway.port}/graphql"


async def partner_token(gateway: Gateway, partner: Any, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    async with httpx.AsyncClient(base_url=gateway.base) as client:
        response = await client.post(
            "/oauth/token", data=data, auth=(partner.client_id, partner.client_secret)
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def event(socket: GraphQLSocket, op_id: str, field: str = "balanceChanged") -> dict[str, Any]:
    message = await socket.receive()
    assert message["type"] == "next" and message["id"] == op_id, message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"][field]


async def no_event(socket: GraphQLSocket, wait: float = 0.7) -> None:
    with pytest.raises(TimeoutError):
        message = await socket.receive(wait)
        pytest.fail(f"unexpected message {message}")


async def member_of(db: Database, **partner_args: Any) -> tuple[Any, Any, str]:
    partner = await make_partner(db, **partner_args)
    member = await enroll(db, partner)
    return partner, member, await member_token(db, member.id)


async def test_a_member_hears_an_earn_with_the_token_in_connection_init(db, ws_server):
    cafe, member, token = await member_of(db)
    async with subscribed(ws_url(ws_server), token, BALANCE) as (socket, op):
        first = await event(socket, op)
        assert first["reason"] == "CURRENT" and first["available"] == 0
        assert (await earn(db, cafe, member.member_number, "42.50")).errors == []
        got = await event(socket, op)
    assert (got["available"], got["pending"], got["held"], got["reason"]) == (42, 0, 0, "EARN")
    assert clock.now() - timedelta(seconds=30) < datetime.fromisoformat(got["occurredAt"]) <= clock.now()


async def test_the_token_may_come_on_the_upgrade_request(db, ws_server):
    cafe, member, token = await member_of(db)
    async with subscribed(ws_url(ws_server), token, BALANCE, in_header=True) as (socket, op):
        assert (await event(socket, op))["reason"] == "CURRENT"
        await earn(db, cafe, member.member_number, "7")
        assert (await event(socket, op))["available"] == 7


@pytest.mark.parametrize(
    ("payload", "header"),
    [
        ({}, None),
        ({"Authorization": "Bearer not-a-token"}, None),
        ({"Authorization": "Basic abc"}, None),
        ({}, "Bearer not-a-token"),
    ],
)
async def test_no_token_or_a_bad_one_closes_the_socket_with_4401(ws_server, payload, header):
    async with open_socket(ws_url(ws_server), header) as socket:
        with pytest.raises(Closed) as closed:
            await socket.init(payload)
    assert closed.value.code == 4401


async def test_subscribing_before_connection_init_is_refused(ws_server):
    async with open_socket(ws_url(ws_server)) as socket:
        await socket.subscribe(BALANCE)
        assert (await socket.closed()).code == 4401


async def test_a_revoked_token_closes_an_open_socket(db, ws_server):
    _, _, token = await member_of(db)
    async with subscribed(ws_url(ws_server), token, BALANCE) as (socket, op):
        assert (await event(socket, op))["reason"] == "CURRENT"
        async with db.sessions() as session:
            assert await identity.revoke_token(session, token) is not None
            await session.commit()  # the NOTIFY reaches the server's verifier, its watchdog closes
        closed = await socket.closed(seconds=3)
    assert closed.code == 4401 and "revoked" in closed.reason


async def test_a_member_sees_only_their_own_balance(db, ws_server):
    cafe, _, token = await member_of(db)
    other = await enroll(db, cafe)
    async with subscribed(ws_url(ws_server), token, PARTNER_BALANCE, {"n": other.member_number}) as (
        socket,
        op,
    ):
        message = await socket.receive()
    assert message["type"] == "next" and message["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with subscribed(ws_url(ws_server), token, BALANCE) as (socket, op):
        assert (await event(socket, op))["available"] == 0
        await earn(db, cafe, other.member_number, "100")  # someone else's earn: not heard
        await no_event(socket)


async def test_a_partner_watches_a_linked_member_and_not_a_stranger(db, ws_server):
    cafe, member, _ = await member_of(db)
    bakery = await make_partner(db)
    stranger = await enroll(db, bakery)
    await earn(db, cafe, member.member_number, "10")
    token = await partner_token(ws_server, cafe)
    async with subscribed(ws_url(ws_server), token, PARTNER_BALANCE, {"n": member.member_number}) as (
        socket,
        op,
    ):
        assert (await event(socket, op, "memberBalanceChanged"))["available"] == 10
        await earn(db, cafe, member.member_number, "5")
        got = await event(socket, op, "memberBalanceChanged")
        assert (got["available"], got["reason"]) == (15, "EARN")
    refused = []
    for number in (stranger.member_number, "000000000000"):
        async with subscribed(ws_url(ws_server), token, PARTNER_BALANCE, {"n": number}) as (socket, op):
            message = await socket.receive()
        assert message["type"] == "next", message
        errors = message["payload"]["errors"]
        refused.append([e["code"] for e in errors[0]["extensions"]["userErrors"]])
    assert refused == [["MEMBER_NOT_FOUND"], ["MEMBER_NOT_FOUND"]]  # the same answer for both


UNLINK = """mutation($id: ID!) { unlinkPartner(input: {partnerId: $id}) {
  unlinked { name } userErrors { code field } } }"""


def refusal(message: dict[str, Any]) -> dict[str, Any]:
    """What a refused subscription answers, without the request id (it differs per request)."""
    assert message["type"] == "next" and message["payload"].get("data") is None, message
    [error] = message["payload"]["errors"]
    extensions = {k: v for k, v in error["extensions"].items() if k != "requestId"}
    return {"message": error["message"], "extensions": extensions}


async def stranger_refusal(gateway: Gateway, token: str) -> dict[str, Any]:
    async with subscribed(ws_url(gateway), token, PARTNER_BALANCE, {"n": "000000000000"}) as (socket, _op):
        return refusal(await socket.receive())


async def test_a_partners_subscription_ends_when_the_member_unlinks_it(db, ws_server):
    cafe, member, member_tok = await member_of(db)
    bakery = await make_partner(db)
    n = member.member_number
    await earn(db, cafe, n, "10")
    await earn(db, bakery, n, "3")  # the card presented at the bakery links it too
    cafe_token, bakery_token = await partner_token(ws_server, cafe), await partner_token(ws_server, bakery)
    async with (
        subscribed(ws_url(ws_server), cafe_token, PARTNER_BALANCE, {"n": n}) as (socket, op),
        subscribed(ws_url(ws_server), bakery_token, PARTNER_BALANCE, {"n": n}) as (bakery_socket, bakery_op),
    ):
        assert (await event(socket, op, "memberBalanceChanged"))["available"] == 13
        assert (await event(bakery_socket, bakery_op, "memberBalanceChanged"))["available"] == 13
        await earn(db, cafe, n, "5")
        assert (await event(socket, op, "memberBalanceChanged"))["available"] == 18
        assert (await event(bakery_socket, bakery_op, "memberBalanceChanged"))["available"] == 18

        async with httpx.AsyncClient(base_url=ws_server.base) as client:
            unlinked = await client.post(
                "/graphql",
                json={"query": UNLINK, "variables": {"id": to_global_id("Partner", cafe.id)}},
                headers={"Authorization": f"Bearer {member_tok}"},
            )
        assert unlinked.json()["data"]["unlinkPartner"] == {"unlinked": {"name": cafe.name}, "userErrors": []}
        await no_event(socket, 0.3)  # the unlink moves no points: nothing yet

        await earn(db, bakery, n, "4")  # a points move at another partner
        ended = await socket.receive()
        assert refusal(ended) == await stranger_refusal(ws_server, cafe_token)  # a stranger's answer
        assert refusal(ended)["extensions"]["userErrors"][0]["code"] == "MEMBER_NOT_FOUND"
        assert (await socket.receive())["type"] == "complete"  # and no balance after it
        # The bakery, still linked, hears the move as usual.
        got = await event(bakery_socket, bakery_op, "memberBalanceChanged")
        assert (got["available"], got["reason"]) == (22, "EARN")


async def test_a_partners_subscription_ends_when_the_member_is_erased(db, ws_server):
    cafe, member, _ = await member_of(db)
    await earn(db, cafe, member.member_number, "10")
    token = await partner_token(ws_server, cafe)
    async with subscribed(ws_url(ws_server), token, PARTNER_BALANCE, {"n": member.member_number}) as (
        socket,
        op,
    ):
        assert (await event(socket, op, "memberBalanceChanged"))["available"] == 10
        await erasure.erase_member(db, ADMIN, member.member_number)  # forfeits the 10: an ERASURE move
        ended = await socket.receive()
        assert refusal(ended) == await stranger_refusal(ws_server, token)
        assert (await socket.receive())["type"] == "complete"


async def test_a_partner_cannot_use_the_members_subscription_and_needs_members_read(db, ws_server):
    cafe, _, _ = await member_of(db)
    token = await partner_token(ws_server, cafe)
    async with subscribed(ws_url(ws_server), token, BALANCE) as (socket, _op):
        message = await socket.receive()
    assert message["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    earn_only = await partner_token(ws_server, cafe, scope="points:earn")
    async with open_socket(ws_url(ws_server)) as socket:
        with pytest.raises(Closed) as closed:
            await socket.init({"Authorization": f"Bearer {earn_only}"})
    assert closed.value.code == 4403


async def test_every_kind_of_points_move_notifies(db, ws_server):
    cafe, member, token = await member_of(db)
    n = member.member_number
    now = clock.now()
    reasons: list[tuple[str, int, int]] = []
    async with subscribed(ws_url(ws_server), token, BALANCE) as (socket, op):
        await event(socket, op)

        async def heard() -> None:
            got = await event(socket, op)
            reasons.append((got["reason"], got["available"], got["held"]))

        assert (await earn(db, cafe, n, "100", order_id="o-1")).errors == []
        await heard()
        redeemed = await redeem(db, cafe, n, 10)
        await heard()
        hold = await authorize(db, cafe, n, 20)
        await heard()
        await capture(db, cafe, to_global_id("Authorization", hold.result["authorization_id"]), 5)
        await heard()
        hold = await authorize(db, cafe, n, 7)
        await heard()
        await void(db, cafe, to_global_id("Authorization", hold.result["authorization_id"]))
        await heard()
        await reverse(db, cafe, "o-1", "10")
        await heard()
        await cancel(db, cafe, to_global_id("Redemption", redeemed.result["redemption_id"]))
        await heard()
        await authorize(db, cafe, n, 3, expires_in=timedelta(seconds=10))
        await heard()
        await release_expired_holds(db, now + timedelta(minutes=1))
        await heard()
    assert [r[0] for r in reasons] == [
        "EARN",
        "REDEEM",
        "HOLD",
        "CAPTURE",
        "HOLD",
        "VOID",
        "REVERSE",
        "CANCEL_REDEMPTION",
        "HOLD",
        "HOLD_EXPIRY",
    ]
    assert reasons[:4] == [("EARN", 100, 0), ("REDEEM", 90, 0), ("HOLD", 70, 20), ("CAPTURE", 85, 0)]


async def test_the_workers_activation_and_expiry_notify(db, ws_server):
    cafe, member, token = await member_of(db, return_window_days=1)
    now = clock.now()
    months = get_settings().points_expiry_months
    async with subscribed(ws_url(ws_server), token, BALANCE) as (socket, op):
        await event(socket, op)
        # Earned so that the return window ends in an hour, and the points expire in two.
        await earn(db, cafe, member.member_number, "30", occurred_at=now - timedelta(days=1, hours=-1))
        assert (await event(socket, op))["pending"] == 30
        await earn(
            db,
            cafe,
            member.member_number,
            "5",
            occurred_at=clock.add_months(now, -months) + timedelta(hours=2),
        )
        await event(socket, op)
        await activate_due_lots(db, now + timedelta(minutes=90))
        assert (await event(socket, op))["reason"] == "ACTIVATION"
        assert (await expire_due_lots(db, now + timedelta(hours=3))).rows >= 1
        expired = await event(socket, op)
    assert expired["reason"] == "EXPIRY" and expired["pending"] == 30


async def test_a_change_that_is_refused_or_rolled_back_does_not_notify(db, ws_server):
    cafe, member, token = await member_of(db)
    async with subscribed(ws_url(ws_server), token, BALANCE) as (socket, op):
        await event(socket, op)
        refused = await redeem(db, cafe, member.member_number, 50)  # nothing to spend
        assert [e.code for e in refused.errors] == ["INSUFFICIENT_POINTS"]
        async with sql.connection(db) as conn:
            transaction = conn.transaction()
            await transaction.start()
            await live.notify(conn, member.id, BalanceChangeReason.EARN, clock.now())
            await transaction.rollback()
        await no_event(socket)
        await earn(db, cafe, member.member_number, "3")
        assert (await event(socket, op))["reason"] == "EARN"


async def test_subscriptions_are_under_the_query_limits(db, ws_server):
    _, _, token = await member_of(db)
    many = " ".join(f"a{i}: available" for i in range(get_settings().max_aliases + 1))
    async with subscribed(ws_url(ws_server), token, f"subscription {{ balanceChanged {{ {many} }} }}") as (
        socket,
        _op,
    ):
        message = await socket.receive()
    assert message["type"] == "error", message
    assert message["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_a_socket_holds_a_bounded_number_of_subscriptions(db, ws_server):
    from services.gateway.sockets import MAX_SUBSCRIPTIONS_PER_SOCKET

    _, _, token = await member_of(db)
    async with subscribed(ws_url(ws_server), token, BALANCE) as (socket, op):
        await event(socket, op)
        for _ in range(MAX_SUBSCRIPTIONS_PER_SOCKET - 1):
            await event(socket, await socket.subscribe(BALANCE))
        over = await socket.subscribe(BALANCE)
        message = await socket.receive()
    assert message["type"] == "error" and message["id"] == over
    assert "limit" in message["payload"][0]["message"]


async def test_a_member_holds_a_bounded_number_of_sockets(db, ws_server):
    from services.gateway.sockets import MAX_SOCKETS_PER_MEMBER

    _, _, token = await member_of(db)
    opened: list[Any] = []
    try:
        for _ in range(MAX_SOCKETS_PER_MEMBER):
            cm = subscribed(ws_url(ws_server), token, BALANCE)
            socket, op = await cm.__aenter__()
            opened.append(cm)
            await event(socket, op)
        async with open_socket(ws_url(ws_server)) as socket:
            with pytest.raises(Closed) as closed:
                await socket.init({"Authorization": f"Bearer {token}"})
        assert closed.value.code == 4429
    finally:
        for cm in opened:
            await cm.__aexit__(None, None, None)
