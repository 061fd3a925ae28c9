"""A request whose statement runs past DB_STATEMENT_TIMEOUT_SECONDS (here an earn waiting for a
wallet lock the test holds) is answered 503 TIMEOUT with Retry-After, instead of hanging; nothing
was written, and the same key succeeds once the lock is free."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from shared.database import Database
from tests.e2e.conftest import start_gateway
from tests.e2e.drills import (
    acknowledgement,
    check_refusal,
    earns_for_order,
    new_purchase,
    purchase_request,
    till_with_a_wallet,
    wallet_locked,
)


async def test_a_statement_over_the_limit_is_answered_503_timeout(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    gateway = start_gateway(database_url, tmp_path / "gw.log", DB_STATEMENT_TIMEOUT_SECONDS="0.5")
    try:
        till = await till_with_a_wallet(db, gateway.base)
        purchase = new_purchase()
        async with httpx.AsyncClient(base_url=gateway.base, timeout=10) as client:
            async with wallet_locked(db, till.member_id):
                started = time.monotonic()
                refused = await client.post(**purchase_request(till, purchase))
                waited = time.monotonic() - started
            assert check_refusal(refused) == "TIMEOUT", (refused.status_code, refused.text)
            assert refused.headers["retry-after"].isdigit()
            assert "did not finish in time" in refused.json()["errors"][0]["message"]
            assert waited < 5
            assert await earns_for_order(db, purchase.order_id) == 0
            retried = await client.post(**purchase_request(till, purchase))
        assert acknowledgement(retried) is not None, retried.text
        assert await earns_for_order(db, purchase.order_id) == 1
    finally:
        gateway.stop()
