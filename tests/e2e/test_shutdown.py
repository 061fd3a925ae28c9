"""SIGTERM drains `coalition serve`: requests in flight finish, new connections are refused, and the
process exits within SHUTDOWN_GRACE_SECONDS even when a request would not finish.

The slow request is an earn for a member whose wallet row the test holds locked (drills.py).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

import httpx

from shared.database import Database
from tests.e2e.conftest import Gateway, start_gateway
from tests.e2e.drills import (
    Till,
    acknowledgement,
    earns_for_order,
    new_purchase,
    purchase_request,
    till_with_a_wallet,
    until_waiting_for_the_lock,
    wallet_locked,
)


def exited_cleanly(exit_code: int, gateway: Gateway) -> bool:
    """Shut down through the application's lifespan; uvicorn then re-raises the SIGTERM it caught,
    so the process ends by that signal (a supervisor sees what stopped it), or with 0."""
    return exit_code in (0, -signal.SIGTERM) and "Application shutdown complete." in gateway.output()


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


async def _gateway_and_till(db: Database, database_url: str, log: Path, **env: str) -> tuple[Gateway, Till]:
    gateway = start_gateway(database_url, log, **env)
    try:
        return gateway, await till_with_a_wallet(db, gateway.base)
    except BaseException:
        gateway.stop()
        raise


async def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_connections(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    grace = "15"
    env = {"SHUTDOWN_GRACE_SECONDS": grace}
    gateway, till = await _gateway_and_till(db, database_url, tmp_path / "gw.log", **env)
    client = httpx.AsyncClient(base_url=gateway.base, timeout=30)
    purchase = new_purchase()
    try:
        async with wallet_locked(db, till.member_id):
            earn = asyncio.create_task(client.post(**purchase_request(till, purchase)))
            await until_waiting_for_the_lock(db)
            gateway.signal(signal.SIGTERM)
            signalled = time.monotonic()
            await asyncio.sleep(0.5)  # uvicorn checks for the signal every 0.1 s
            assert refuses_connections(gateway.port), "a new connection was accepted while draining"
            assert gateway.popen.poll() is None, "the server exited with a request in flight"
        response = await earn  # the lock is released: the earn completes
        exit_code = await asyncio.to_thread(gateway.wait, 15)
        exited_in = time.monotonic() - signalled
    finally:
        await client.aclose()
        gateway.stop()
    assert acknowledgement(response) is not None, response.text
    assert exited_cleanly(exit_code, gateway), gateway.output()[-2000:]
    assert exited_in < float(grace)
    print(f"\nSIGTERM with a slow request: exited {exited_in:.2f} s after the signal, once it was answered")
    assert await earns_for_order(db, purchase.order_id) == 1


async def test_sigterm_exits_within_the_grace_even_if_a_request_hangs(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    grace = 1.0
    env = {"SHUTDOWN_GRACE_SECONDS": str(grace), "DB_CLIENT_CHECK_INTERVAL_SECONDS": "0.3"}
    gateway, till = await _gateway_and_till(db, database_url, tmp_path / "gw.log", **env)
    client = httpx.AsyncClient(base_url=gateway.base, timeout=30)
    purchase = new_purchase()
    try:
        async with wallet_locked(db, till.member_id):
            earn = asyncio.create_task(client.post(**purchase_request(till, purchase)))
            await until_waiting_for_the_lock(db)
            gateway.signal(signal.SIGTERM)
            signalled = time.monotonic()
            exit_code = await asyncio.to_thread(gateway.wait, grace + 5)
            exited_in = time.monotonic() - signalled
            # Cut at the grace: the connection drops, or uvicorn answers the cancelled request with
            # a bare 500 (which of the two depends on who gets there first); either way nothing
            # was acknowledged.
            try:
                cut = await earn
            except httpx.TransportError:
                pass
            else:
                assert cut.status_code >= 500 and acknowledgement(cut) is None, cut.text
            # PostgreSQL notices the client is gone (DB_CLIENT_CHECK_INTERVAL_SECONDS) and aborts
            # the earn waiting for the lock, which would otherwise go on once the lock is free.
            await asyncio.sleep(1.0)
    finally:
        await client.aclose()
        gateway.stop()
    assert exited_in < grace + 2, exited_in
    print(f"\nSIGTERM with a hung request: exited {exited_in:.2f} s after the signal (grace {grace} s)")
    assert exited_cleanly(exit_code, gateway), gateway.output()[-2000:]
    assert "timeout graceful shutdown exceeded" in gateway.output()
    assert await earns_for_order(db, purchase.order_id) == 0
