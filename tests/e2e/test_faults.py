"""Fault drills with real processes: the gateway killed under load, and PostgreSQL restarted under
load. Acknowledged earns are never lost or doubled, the refusals in between are retryable 503s,
and `coalition audit` is clean afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.gateway.availability import outage_of
from services.identity import service as identity
from shared.access import ADMIN_SCOPES
from shared.database import COMMAND_TIMEOUT_MARGIN, Database, normalize_url
from shared.sql import connection
from tests.e2e.conftest import OwnPostgres, run_cli, start_gateway, start_worker
from tests.e2e.drills import EarnLoad, assert_each_acknowledged_once, check_refusal, seed_tills, until

RECOVERY_LIMIT = 5.0  # seconds from the database being back to the gateway serving again
OUTAGE_SECONDS = 2.0
SMALL_POOL = {"DB_POOL_SIZE": "8"}  # the shared test server has other users: 12 connections a gateway


def audit_is_clean(database_url: str) -> None:
    audit = run_cli(database_url, "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "all hold" in audit.stdout


async def test_sigkill_of_the_gateway_loses_no_acknowledged_earn(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    """32 tills earning; the gateway is killed with SIGKILL mid-load and started again on the same
    port; the tills retry with the same keys. Every acknowledged earn is in the ledger exactly once."""
    gateway = start_gateway(database_url, tmp_path / "gateway-1.log", **SMALL_POOL)
    restarted = None
    try:
        tills = await seed_tills(db, gateway.base, partners=4, tills=32)
        load = EarnLoad(gateway.base, tills)
        running = asyncio.create_task(load.run())
        acked = load.outcomes.acknowledged
        await until(lambda: len(acked) >= 150, 30, "150 earns before the kill")
        gateway.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await asyncio.to_thread(gateway.wait, 5)
        before_kill = len(acked)
        # Restarted in a thread, so the tills keep retrying (refused connections) meanwhile.
        restarted = await asyncio.to_thread(
            start_gateway, database_url, tmp_path / "gateway-2.log", port=gateway.port, **SMALL_POOL
        )
        await until(lambda: len(acked) >= before_kill + 150, 30, "150 earns after the restart")
        back_in = min(a.at for a in acked if a.sent > killed_at) - killed_at
        load.stop()
        outcomes = await running
    finally:
        gateway.stop()
        if restarted is not None:
            restarted.stop()

    assert outcomes.transport_errors > 0, "the kill hit no request in flight"
    assert outcomes.unexpected == []
    await assert_each_acknowledged_once(db, load)
    audit_is_clean(database_url)
    print(
        f"\nSIGKILL drill: {outcomes.requests} earn requests, {len(acked)} acknowledged, "
        f"{outcomes.transport_errors} transport errors, {outcomes.replays} replayed after a failure; "
        f"first earn {back_in:.2f} s after the kill (restart included)"
    )


@dataclass
class Probe:
    route: str
    started: float
    ended: float
    status: int
    body: dict
    refusal: str | None


async def probe_routes(base: str, admin: tuple[str, str], token: str, stop: asyncio.Event) -> list[Probe]:
    """/healthz, the token endpoint and a settlement route, each in its own loop, until `stop`."""
    probes: list[Probe] = []
    bearer = {"Authorization": f"Bearer {token}"}
    requests = {
        "healthz": lambda c: c.get("/healthz"),
        "oauth": lambda c: c.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=admin),
        "settlement": lambda c: c.get("/settlement/runs/999999999/export.csv", headers=bearer),
    }

    async def loop(client: httpx.AsyncClient, route: str) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = await requests[route](client)
            except httpx.TransportError as exc:  # recorded: a dropped connection is an answer too
                probes.append(Probe(route, started, time.monotonic(), 0, {"error": repr(exc)}, None))
                continue
            try:
                body = response.json()
            except ValueError:
                body = {"text": response.text[:200]}
            refusal = check_refusal(response)
            probes.append(Probe(route, started, time.monotonic(), response.status_code, body, refusal))
            await asyncio.sleep(0.05)

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        await asyncio.gather(*(loop(client, route) for route in requests))
    return probes


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_under_load(own_postgres: OwnPostgres, tmp_path: Path, mode: str) -> None:
    """PostgreSQL stopped for 2 s (`fast`: sessions terminated, a clean shutdown; `immediate`: as
    if it crashed, recovered from the WAL at start) and started again while 16
    tills earn, a worker runs and probes call the other routes. Meanwhile every route answers 503
    UNAVAILABLE with Retry-After, /healthz says unavailable; the same gateway and worker serve
    again within RECOVERY_LIMIT once it is back; nothing acknowledged is lost; the audit is clean."""
    url = normalize_url(own_postgres.url)
    db = Database(url, pool_size=4)
    gateway = start_gateway(url, tmp_path / "gateway.log")
    worker = start_worker(url, tmp_path / "worker.log", "--interval", "0.3")
    try:
        async with db.sessions() as session:
            admin = await identity.create_client(session, name="drill admin", scopes=sorted(ADMIN_SCOPES))
            await session.commit()
        tills = await seed_tills(db, gateway.base, partners=4, tills=16)
        async with httpx.AsyncClient(base_url=gateway.base) as client:
            issued = await client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(admin.client_id, admin.client_secret),
            )
        admin_token = issued.json()["access_token"]
        load = EarnLoad(gateway.base, tills)
        stop_probes = asyncio.Event()
        running = asyncio.create_task(load.run())
        probing = asyncio.create_task(
            probe_routes(gateway.base, (admin.client_id, admin.client_secret), admin_token, stop_probes)
        )
        acked = load.outcomes.acknowledged
        await until(lambda: len(acked) >= 100, 30, "100 earns before the outage")

        await asyncio.to_thread(own_postgres.stop, mode)
        down_from = time.monotonic()
        await asyncio.sleep(OUTAGE_SECONDS)
        down_until = time.monotonic()
        await asyncio.to_thread(own_postgres.start)
        back_at = time.monotonic()

        await until(lambda: acked[-1].sent > back_at, RECOVERY_LIMIT + 5, "an earn after the restart")
        recovered_in = min(a.at for a in acked if a.sent > back_at) - back_at
        await until(lambda: len(acked) >= 100 + 200, 30, "earns after the restart")
        load.stop()
        stop_probes.set()
        outcomes = await running
        probes = await probing
        gateway_alive, worker_alive = gateway.popen.poll() is None, worker.popen.poll() is None
        worker.signal(signal.SIGTERM)
        worker_exit = worker.wait(timeout=10)
    finally:
        gateway.stop()
        worker.stop()

    assert outcomes.unexpected == [], outcomes.unexpected[:5]
    assert outcomes.refused["UNAVAILABLE"] > 0
    assert recovered_in < RECOVERY_LIMIT, recovered_in
    assert gateway_alive, gateway.output()[-3000:]
    assert worker_alive and worker_exit == 0, worker.output()[-3000:]

    during = [p for p in probes if p.started >= down_from and p.ended <= down_until]
    for route in ("healthz", "oauth", "settlement"):
        seen = [p for p in during if p.route == route]
        assert seen, f"no {route} probe while the database was down"
        if route == "healthz":
            assert {(p.status, p.body.get("status")) for p in seen} == {(503, "unavailable")}
        else:
            assert {(p.status, p.refusal) for p in seen} == {(503, "UNAVAILABLE")}, seen[:3]
    assert {p.body.get("error") for p in during if p.route == "oauth"} == {"temporarily_unavailable"}
    healthy_again = [p for p in probes if p.route == "healthz" and p.started > back_at and p.status == 200]
    assert healthy_again and healthy_again[0].ended - back_at < RECOVERY_LIMIT
    after = [p for p in probes if p.started > healthy_again[0].ended]
    assert {(p.route, p.status) for p in after} <= {("healthz", 200), ("oauth", 200), ("settlement", 404)}

    await assert_each_acknowledged_once(db, load)
    await db.dispose()
    audit_is_clean(url)
    print(
        f"\nrestart drill ({mode}): {outcomes.requests} earn requests, {len(acked)} acknowledged, "
        f"{outcomes.refused['UNAVAILABLE']} refused 503 while down, {outcomes.replays} replays; "
        f"{len(probes)} probes; served again {recovered_in:.2f} s after the database was back"
    )


async def test_a_database_that_stops_answering_is_given_up_on(own_postgres: OwnPostgres) -> None:
    """A server that accepts nothing and refuses nothing (frozen, or the network gone) never sends
    its statement_timeout error: the client stops waiting on its own (asyncpg's command_timeout),
    and once the server answers again so does the pool."""
    db = Database(normalize_url(own_postgres.url), pool_size=1, statement_timeout=0.5)
    try:
        async with connection(db) as conn:
            backend = await conn.fetchval("SELECT pg_backend_pid()")
        os.kill(backend, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError) as frozen:
                async with connection(db) as conn:
                    await conn.fetchval("SELECT 1")
            waited = time.monotonic() - started
        finally:
            os.kill(backend, signal.SIGCONT)
        assert 0.5 <= waited < 0.5 + COMMAND_TIMEOUT_MARGIN + 1.5, waited
        assert outage_of(frozen.value).code == "UNAVAILABLE"
        for _ in range(3):
            async with connection(db) as conn:
                assert await conn.fetchval("SELECT 2") == 2
    finally:
        await db.dispose()
