"""How fast does a disabled client's token stop working on another gateway process?

    .venv/bin/python bench/propagation.py [--disables 200]

Two `coalition serve` processes on one scratch database, behind one issuer, their periodic re-read
an hour away (so only LISTEN/NOTIFY can carry the change). Each round: a new partner's token is
verified by both, `disableClient` is sent to the first, and the second is asked at once. Reports
how often that first request was already refused, the time from the disable's answer to the 401,
and how long `disableClient` itself took (it waits for every listener's acknowledgement).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.identity import service as identity
from shared.access import ADMIN_SCOPES
from shared.database import Database, drop_database, recreate_database, resolve_database_url
from shared.migrate import upgrade_to_head
from tests.e2e.conftest import free_port
from tests.factories import make_partner
from tests.identity.gateways import serving
from tests.identity.test_client_admin import DISABLE, VIEWER
from tests.identity.test_two_gateways import fetch_token, gql

DATABASE = "coalition_bench_propagation"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def _prepare(url: str) -> identity.ClientCredentials:
    db = Database(url, pool_size=2)
    try:
        async with db.sessions() as session:
            await identity.ensure_signing_key(session)
            admin = await identity.create_client(session, name="bench admin", scopes=sorted(ADMIN_SCOPES))
            await session.commit()
    finally:
        await db.dispose()
    return admin


async def _rounds(url: str, one: str, other: str, admin: identity.ClientCredentials, n: int) -> None:
    db = Database(url, pool_size=2)
    refused_first, to_401, disabling = 0, [], []
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            admin_token = await fetch_token(http, one, admin.client_id, admin.client_secret)
            for _ in range(n):
                partner = await make_partner(db)
                token = await fetch_token(http, one, partner.client_id, partner.client_secret)
                for base in (one, other):
                    assert (await gql(http, base, token, VIEWER, {})).status_code == 200
                started = time.monotonic()
                await gql(http, one, admin_token, DISABLE, {"input": {"clientId": partner.client_id}})
                answered = time.monotonic()
                disabling.append(answered - started)
                attempts = 0
                while (await gql(http, other, token, VIEWER, {})).status_code != 401:
                    attempts += 1
                to_401.append(time.monotonic() - answered)
                refused_first += attempts == 0
    finally:
        await db.dispose()
    to_401.sort()
    print(
        f"{n} disables: first request to the other gateway refused {refused_first}/{n}; its 401"
        f" {_ms(statistics.median(to_401))} median after the disable's answer"
        f" (p90 {_ms(to_401[int(0.9 * n) - 1])}, max {_ms(to_401[-1])});"
        f" disableClient {_ms(statistics.median(disabling))} median (max {_ms(max(disabling))})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--disables", type=int, default=200)
    args = parser.parse_args()
    base = resolve_database_url()
    url = asyncio.run(recreate_database(base, DATABASE))
    try:
        asyncio.run(upgrade_to_head(url))
        admin = asyncio.run(_prepare(url))
        first, second = free_port(), free_port()
        issuer = f"http://127.0.0.1:{first}"
        with ExitStack() as stack:
            one = stack.enter_context(serving(url, first, issuer))
            other = stack.enter_context(serving(url, second, issuer))
            asyncio.run(_rounds(url, one, other, admin, args.disables))
    finally:
        asyncio.run(drop_database(base, DATABASE))


if __name__ == "__main__":
    main()
