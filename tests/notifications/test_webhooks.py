"""Partners' webhooks, delivered for real: a partner's endpoint made through the GraphQL API with a
real token, events fanned out and POSTed by the worker's jobs to a real HTTP server, signatures
checked with the snippet the docs give partners (docs/webhook_verify.py)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.notifications import webhook_endpoints as endpoints
from services.notifications import webhook_fanout, webhook_sender
from services.notifications.webhook_models import EndpointStatus
from shared import clock
from shared.database import Database
from shared.errors import DomainError
from shared.ids import from_global_id, to_global_id
from shared.sql import Sql, connection
from tests.conftest import Gateway
from tests.factories import ADMIN, SeededPartner, earn, enroll, make_partner
from tests.notifications.webhook_receiver import serve_receiver

_spec = importlib.util.spec_from_file_location(
    "webhook_verify", Path(__file__).resolve().parents[2] / "docs" / "webhook_verify.py"
)
assert _spec is not None and _spec.loader is not None
webhook_verify = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(webhook_verify)

CREATE = """
mutation($url: String!, $types: [String!]!) {
  createWebhookEndpoint(input: {url: $url, eventTypes: $types}) {
    endpoint { id url eventTypes status }
    secret
    userErrors { code field message }
  }
}"""
DELIVERIES = """
query($id: ID!, $status: WebhookDeliveryStatus) {
  webhookDeliveries(endpointId: $id, status: $status, first: 50) {
    edges { node { id eventId eventType status attempts lastStatusCode lastError } }
  }
}"""
REDELIVER = """
mutation($id: ID!) {
  redeliverWebhook(input: {deliveryId: $id}) { delivery { id status } userErrors { code field } }
}"""
COALITION = str(Path(sys.executable).parent / "coalition")
STATUS = Sql("SELECT status, attempts, next_attempt_at, retry_until FROM webhook_deliveries WHERE id = :id")


async def deliver(db: Database, now=None) -> None:
    """What `coalition worker` does for webhooks in one round: fan out, then send what is due."""
    now = now or clock.now()
    while (await webhook_fanout.fan_out(db, now, 500)).events:
        pass
    while (await webhook_sender.send_due(db, now)).handled:
        pass


async def _endpoint(
    gateway: Gateway, partner: SeededPartner, url: str, types: list[str]
) -> tuple[str, int, str]:
    token = await gateway.partner_token(partner)
    answer = (await gateway.gql(token, CREATE, {"url": url, "types": types}))["data"]["createWebhookEndpoint"]
    assert answer["userErrors"] == [], answer
    assert answer["endpoint"]["status"] == "ACTIVE" and answer["secret"].startswith("whsec_")
    gid = answer["endpoint"]["id"]
    return gid, int(_local(gid)), answer["secret"]


def _local(gid: str) -> int:
    decoded = from_global_id(gid)
    assert decoded is not None
    return decoded[1]


async def _deliveries(gateway: Gateway, partner: SeededPartner, endpoint_gid: str, status=None) -> list[dict]:
    token = await gateway.partner_token(partner)
    answer = await gateway.gql(token, DELIVERIES, {"id": endpoint_gid, "status": status})
    assert "errors" not in answer, answer
    return [e["node"] for e in answer["data"]["webhookDeliveries"]["edges"]]


async def test_an_earn_reaches_the_partners_endpoint_signed_and_no_other_partners_events_do(
    db: Database, gateway: Gateway
) -> None:
    cafe, other = await make_partner(db), await make_partner(db)
    async with serve_receiver() as receiver:
        gid, _, secret = await _endpoint(gateway, cafe, receiver.url, ["points.earned", "member.linked"])
        member = await enroll(db, cafe)
        stranger = await enroll(db, other)
        await earn(db, cafe, member.member_number, "12.00")
        await earn(db, other, stranger.member_number, "30.00")
        await earn(db, other, member.member_number, "7.00")  # the member, at another partner
        await deliver(db)
        types = [r.json["type"] for r in receiver.received]
        assert types.count("points.earned") == 1 and "member.linked" in types
        for got in receiver.received:
            assert webhook_verify.verify(secret, got.body, got.headers["coalition-signature"])
            assert not webhook_verify.verify(secret, got.body + b" ", got.headers["coalition-signature"])
            assert got.event_id == got.json["id"] and got.headers["coalition-event-type"] == got.json["type"]
            assert got.json["data"]["memberNumber"] == member.member_number
        earned = next(r.json for r in receiver.received if r.json["type"] == "points.earned")
        assert earned["data"]["points"] == 12 and earned["data"]["partnerId"] == to_global_id(
            "Partner", cafe.id
        )
        assert set(earned) == {"id", "type", "version", "occurredAt", "data"}
        listed = await _deliveries(gateway, cafe, gid)
        assert {d["status"] for d in listed} == {"SUCCEEDED"} and len(listed) == len(receiver.received)
        # Another partner sees the endpoint as if it did not exist.
        assert (await _deliveries_error(gateway, other, gid)) == "WEBHOOK_ENDPOINT_NOT_FOUND"


async def _deliveries_error(gateway: Gateway, partner: SeededPartner, gid: str) -> str:
    token = await gateway.partner_token(partner)
    answer = await gateway.gql(token, DELIVERIES, {"id": gid, "status": None})
    return answer["errors"][0]["extensions"]["userErrors"][0]["code"]


async def test_a_500_is_retried_with_backoff_and_the_same_event_id(db: Database, gateway: Gateway) -> None:
    cafe = await make_partner(db)
    async with serve_receiver() as receiver:
        receiver.statuses = [500, 503]
        gid, _, secret = await _endpoint(gateway, cafe, receiver.url, ["points.earned"])
        member = await enroll(db, cafe)
        await earn(db, cafe, member.member_number, "5.00")
        start = clock.now()
        await deliver(db, start)
        [first] = await _deliveries(gateway, cafe, gid)
        assert (first["status"], first["attempts"], first["lastStatusCode"]) == ("PENDING", 1, 500)
        async with connection(db) as conn:
            row = await STATUS.fetchrow(conn, id=_local(first["id"]))
        assert timedelta(seconds=5) <= row["next_attempt_at"] - start <= timedelta(seconds=10)
        await deliver(db, start + timedelta(seconds=1))  # not due yet: nothing sent
        assert len(receiver.received) == 1
        await deliver(db, row["next_attempt_at"])
        await deliver(db, row["next_attempt_at"] + timedelta(seconds=21))
        assert len(receiver.received) == 3
        assert len({r.event_id for r in receiver.received}) == 1
        [done] = await _deliveries(gateway, cafe, gid)
        assert (done["status"], done["attempts"], done["lastStatusCode"]) == ("SUCCEEDED", 3, 200)
        assert all(
            webhook_verify.verify(secret, r.body, r.headers["coalition-signature"]) for r in receiver.received
        )


async def test_a_receiver_down_for_a_day_dead_letters_and_redelivery_sends_it_again(
    db: Database, gateway: Gateway
) -> None:
    cafe = await make_partner(db)
    async with serve_receiver() as receiver:
        receiver.statuses = [500] * 1000
        gid, endpoint_id, _ = await _endpoint(gateway, cafe, receiver.url, ["points.earned"])
        member = await enroll(db, cafe)
        await earn(db, cafe, member.member_number, "5.00")
        now = clock.now()
        for _ in range(60):  # every retry as soon as it is due, until the day is over
            await deliver(db, now)
            [d] = await _deliveries(gateway, cafe, gid)
            if d["status"] == "DEAD":
                break
            async with connection(db) as conn:
                now = (await STATUS.fetchrow(conn, id=_local(d["id"])))["next_attempt_at"]
        assert d["status"] == "DEAD", d
        assert 15 <= d["attempts"] <= 45 and d["lastError"] == "HTTP 500"
        assert len(receiver.received) == d["attempts"]
        receiver.statuses = []
        token = await gateway.partner_token(cafe)
        other = await gateway.partner_token(await make_partner(db))
        refused = (await gateway.gql(other, REDELIVER, {"id": d["id"]}))["data"]["redeliverWebhook"]
        assert refused["userErrors"] == [{"code": "WEBHOOK_DELIVERY_NOT_FOUND", "field": "deliveryId"}]
        again = (await gateway.gql(token, REDELIVER, {"id": d["id"]}))["data"]["redeliverWebhook"]
        assert again["delivery"]["status"] == "PENDING"
        await deliver(db)
        assert receiver.received[-1].event_id == receiver.received[0].event_id
        [d] = await _deliveries(gateway, cafe, gid, "SUCCEEDED")
        assert d["attempts"] == len(receiver.received)
    await endpoints.delete_endpoint(db, cafe.principal, endpoint_id)


async def test_each_members_events_arrive_in_order_while_another_members_flow_past_a_failure(
    db: Database, gateway: Gateway
) -> None:
    cafe = await make_partner(db)
    async with serve_receiver() as receiver:
        await _endpoint(gateway, cafe, receiver.url, ["points.earned"])
        slow, other = await enroll(db, cafe), await enroll(db, cafe)
        for amount in ("1.00", "2.00", "3.00", "4.00"):
            await earn(db, cafe, slow.member_number, amount)
            await earn(db, cafe, other.member_number, amount)
        receiver.statuses = [500]  # the very first POST fails: it is the slow member's first earn
        now = clock.now()
        await deliver(db, now)
        assert [r.json["data"]["points"] for r in receiver.of_member(other.member_number)] == [1, 2, 3, 4]
        # The slow member's later events wait behind the failed first one.
        assert [r.json["data"]["points"] for r in receiver.of_member(slow.member_number)] == [1]
        await deliver(db, now + timedelta(seconds=11))
        assert [r.json["data"]["points"] for r in receiver.of_member(slow.member_number)] == [1, 1, 2, 3, 4]


async def test_a_rotated_secret_signs_alongside_the_old_one_for_the_overlap(
    db: Database, gateway: Gateway
) -> None:
    cafe = await make_partner(db)
    async with serve_receiver() as receiver:
        _, endpoint_id, old = await _endpoint(gateway, cafe, receiver.url, ["points.earned"])
        rotated = await endpoints.rotate_secret(db, cafe.principal, endpoint_id, timedelta(hours=1))
        assert rotated.secret != old and rotated.endpoint.previous_secret_expires_at is not None
        member = await enroll(db, cafe)
        await earn(db, cafe, member.member_number, "5.00")
        await deliver(db)
        [got] = receiver.received
        header = got.headers["coalition-signature"]
        assert header.count("v1=") == 2
        assert webhook_verify.verify(rotated.secret, got.body, header)
        assert webhook_verify.verify(old, got.body, header)
        # Past the overlap only the new secret signs.
        await earn(db, cafe, member.member_number, "6.00")
        later = clock.now() + timedelta(hours=2)
        await deliver(db, later)
        late = receiver.received[-1]
        header = late.headers["coalition-signature"]
        assert header.count("v1=") == 1
        assert webhook_verify.verify(rotated.secret, late.body, header)
        assert not webhook_verify.verify(old, late.body, header)
        # The snippet refuses a delivery replayed outside its tolerance.
        assert not webhook_verify.verify(rotated.secret, late.body, header, now=time.time() + 3600)


async def test_a_disabled_endpoint_is_sent_nothing_and_a_deleted_one_is_owed_nothing(
    db: Database, gateway: Gateway
) -> None:
    cafe = await make_partner(db)
    async with serve_receiver() as receiver:
        _, endpoint_id, _ = await _endpoint(gateway, cafe, receiver.url, ["points.earned"])
        member = await enroll(db, cafe)
        await earn(db, cafe, member.member_number, "5.00")
        await webhook_fanout.fan_out(db, clock.now(), 500)
        await endpoints.update_endpoint(db, cafe.principal, endpoint_id, status=EndpointStatus.DISABLED)
        await earn(db, cafe, member.member_number, "6.00")  # not fanned out to a disabled endpoint
        await deliver(db)
        assert receiver.received == []
        await endpoints.update_endpoint(db, cafe.principal, endpoint_id, status=EndpointStatus.ACTIVE)
        await deliver(db)
        assert [r.json["data"]["points"] for r in receiver.received] == [5]
        await endpoints.delete_endpoint(db, cafe.principal, endpoint_id)
        await earn(db, cafe, member.member_number, "7.00")
        await deliver(db)
        assert len(receiver.received) == 1
        with pytest.raises(DomainError) as caught:
            await endpoints.update_endpoint(db, cafe.principal, endpoint_id, status=EndpointStatus.ACTIVE)
        assert caught.value.errors[0].code == "WEBHOOK_ENDPOINT_NOT_FOUND"


async def test_the_coalitions_own_endpoint_hears_every_partners_events(db: Database) -> None:
    a, b = await make_partner(db), await make_partner(db)
    async with serve_receiver() as receiver:
        created = await endpoints.create_endpoint(db, ADMIN, url=receiver.url, event_types=["points.earned"])
        try:
            member = await enroll(db, a)
            await earn(db, a, member.member_number, "3.00")
            await earn(db, b, (await enroll(db, b)).member_number, "4.00")
            await deliver(db)
        finally:
            await endpoints.delete_endpoint(db, ADMIN, created.endpoint.id)
        points = sorted(r.json["data"]["points"] for r in receiver.received)
        assert points == [3, 4]


@pytest.mark.parametrize(
    ("url", "production", "ok"),
    [
        ("https://hooks.example.com/coalition", True, True),
        ("https://hooks.example.com:8443/x?a=1", True, True),
        ("http://hooks.example.com/coalition", True, False),
        ("https://127.0.0.1/hook", True, False),
        ("https://10.1.2.3/hook", True, False),
        ("https://[::1]/hook", True, False),
        ("https://localhost/hook", True, False),
        ("https://user:pw@hooks.example.com/", True, False),
        ("https://hooks.example.com/#frag", True, False),
        ("ftp://hooks.example.com/", True, False),
        ("hooks.example.com/x", True, False),
        ("https://hooks.example.com:99999/", True, False),
        ("http://127.0.0.1:8080/hook", False, True),
        ("http://localhost:8080/hook", False, True),
        ("http://hooks.example.com/", False, False),
        ("https://" + "a" * 2000 + ".com/", False, False),
    ],
)
def test_where_deliveries_may_go(url: str, production: bool, ok: bool) -> None:
    assert (endpoints.url_problem(url, production=production) is None) is ok


async def test_bad_terms_name_the_field_and_ten_endpoints_is_the_limit(
    db: Database, gateway: Gateway
) -> None:
    cafe = await make_partner(db)
    token = await gateway.partner_token(cafe)
    answer = await gateway.gql(
        token, CREATE, {"url": "http://hooks.example.com/", "types": ["points.minted"]}
    )
    errors = {(e["field"], e["code"]) for e in answer["data"]["createWebhookEndpoint"]["userErrors"]}
    assert errors == {("url", "INVALID_URL"), ("eventTypes", "UNKNOWN_EVENT_TYPE")}
    answer = await gateway.gql(token, CREATE, {"url": "https://hooks.example.com/", "types": []})
    assert answer["data"]["createWebhookEndpoint"]["userErrors"][0]["code"] == "UNKNOWN_EVENT_TYPE"
    for n in range(10):
        await endpoints.create_endpoint(
            db, cafe.principal, url=f"https://hooks.example.com/{n}", event_types=["member.linked"]
        )
    answer = await gateway.gql(
        token, CREATE, {"url": "https://hooks.example.com/", "types": ["points.earned"]}
    )
    assert answer["data"]["createWebhookEndpoint"]["userErrors"][0]["code"] == "ENDPOINT_LIMIT_REACHED"
    page = await endpoints.list_endpoints(db, cafe.principal, first=100, after=None)
    for _, view in page.items:
        await endpoints.delete_endpoint(db, cafe.principal, view.id)
    # A token without webhooks:write is refused before anything is looked at.
    narrow = await gateway.partner_token(cafe, scope="points:earn")
    refused = await gateway.gql(
        narrow, CREATE, {"url": "https://hooks.example.com/", "types": ["points.earned"]}
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_two_workers_sending_at_once_deliver_each_event_once_in_order(
    db: Database, gateway: Gateway
) -> None:
    cafe = await make_partner(db)
    async with serve_receiver() as receiver:
        await _endpoint(gateway, cafe, receiver.url, ["points.earned"])
        members = [await enroll(db, cafe) for _ in range(5)]
        for round_ in range(1, 9):
            for m in members:
                await earn(db, cafe, m.member_number, f"{round_}.00")
        now = clock.now()
        await asyncio.gather(webhook_fanout.fan_out(db, now, 500), webhook_fanout.fan_out(db, now, 500))
        await asyncio.gather(deliver(db, now), deliver(db, now))
        assert len(receiver.received) == 40 and len({r.event_id for r in receiver.received}) == 40
        for m in members:
            assert [r.json["data"]["points"] for r in receiver.of_member(m.member_number)] == list(
                range(1, 9)
            )


@pytest.fixture(autouse=True)
async def no_endpoint_outlives_its_test(db: Database) -> AsyncIterator[None]:
    """Each test's receiver is gone when it ends: its endpoints go too, so no later worker run (of
    this module or another's) keeps POSTing to a closed port."""
    yield
    async with connection(db) as conn:
        await conn.execute("UPDATE webhook_endpoints SET deleted_at = now() WHERE deleted_at IS NULL")
        await conn.execute("UPDATE webhook_deliveries SET status = 'DEAD' WHERE status = 'PENDING'")


async def _worker(database_url: str, *args: str, offset: float = 0) -> asyncio.subprocess.Process:
    env = {**os.environ, "DATABASE_URL": database_url, "COALITION_CLOCK_OFFSET_SECONDS": str(offset)}
    return await asyncio.create_subprocess_exec(
        COALITION, "worker", *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )


async def test_a_worker_killed_mid_delivery_leaves_it_to_be_sent_again_with_the_same_event_id(
    db: Database, gateway: Gateway, database_url: str
) -> None:
    cafe = await make_partner(db)
    async with serve_receiver() as receiver:
        gid, _, secret = await _endpoint(gateway, cafe, receiver.url, ["points.earned"])
        member = await enroll(db, cafe)
        await earn(db, cafe, member.member_number, "9.00")
        receiver.delay = 30  # the first POST arrives, and the worker dies waiting for the answer
        worker = await _worker(database_url, "--interval", "60")
        try:
            async with asyncio.timeout(60):
                await receiver.wait_for(1)
        finally:
            worker.send_signal(signal.SIGKILL)
            await worker.wait()
        receiver.delay = 0
        [pending] = await _deliveries(gateway, cafe, gid)
        assert (pending["status"], pending["attempts"]) == ("PENDING", 1)  # claimed, never settled
        # Within the lease nobody sends it; past it (the clock moved 5 minutes on) the next worker does.
        soon = await _worker(database_url, "--once")
        assert await soon.wait() == 0, (await soon.stderr.read()).decode()[-2000:]
        assert len(receiver.received) == 1
        later = await _worker(database_url, "--once", offset=300)
        assert await later.wait() == 0, (await later.stderr.read()).decode()[-2000:]
        assert len(receiver.received) == 2
        first, again = receiver.received
        assert first.event_id == again.event_id and first.body == again.body
        assert webhook_verify.verify(
            secret, again.body, again.headers["coalition-signature"], now=time.time() + 300
        )
        [done] = await _deliveries(gateway, cafe, gid)
        assert (done["status"], done["attempts"]) == ("SUCCEEDED", 2)


LISTENING_WORKERS = Sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'coalition-worker'")
UNTAKEN = Sql(
    "SELECT count(*) FROM outbox_events WHERE webhooks_dispatched_at IS NULL OR mail_dispatched_at IS NULL"
)


async def test_a_running_worker_delivers_an_earn_at_once_not_at_its_next_round(
    db: Database, gateway: Gateway, database_url: str
) -> None:
    """The worker hears points moves (the ledger's balance channel) and runs the delivery jobs
    then: with rounds five minutes apart, the webhook still comes within seconds."""
    cafe = await make_partner(db)
    async with serve_receiver() as receiver:
        await _endpoint(gateway, cafe, receiver.url, ["points.earned"])
        member = await enroll(db, cafe)
        async with connection(db) as conn:
            before = await LISTENING_WORKERS.fetchval(conn)
        worker = await _worker(database_url, "--interval", "300")
        try:
            async with asyncio.timeout(60):
                while True:  # it listens, and its first round has taken every event there was
                    async with connection(db) as conn:
                        listening = await LISTENING_WORKERS.fetchval(conn) > before
                        if listening and await UNTAKEN.fetchval(conn) == 0:
                            break
                    await asyncio.sleep(0.05)
            await asyncio.sleep(1)  # and the round is over
            await earn(db, cafe, member.member_number, "4.00")
            async with asyncio.timeout(20):  # far inside the 300 s until its next round
                await receiver.wait_for(1)
            assert receiver.received[0].json["data"]["points"] == 4
        finally:
            worker.send_signal(signal.SIGTERM)
            assert await worker.wait() == 0, (await worker.stderr.read()).decode()[-2000:]
