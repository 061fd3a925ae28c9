"""How long does a member's sign-in take, end to end?

    .venv/bin/python bench/login.py [--logins 50]

One `coalition serve` on a scratch database. Each login is what a member app and its browser do:
GET /oauth/authorize (the page), POST the form (argon2id check, the code, a 302), and the code
exchange at /oauth/token with the PKCE verifier (driven by Authlib's own OAuth client). Prints
the median and p90 of the whole round trip and of each step.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client

from services.identity import service as identity
from shared.database import Database, drop_database, recreate_database, resolve_database_url
from shared.migrate import upgrade_to_head
from tests.e2e.conftest import free_port
from tests.identity.gateways import serving
from tests.identity.signin import PASSWORD, REDIRECT_URI, hidden_fields, member_app, member_with_password

DATABASE = "coalition_bench_login"


async def _prepare(url: str) -> tuple[str, str]:
    db = Database(url, pool_size=2)
    try:
        async with db.sessions() as session:
            await identity.ensure_signing_key(session)
            await session.commit()
        client_id = await member_app(db)
        member = await member_with_password(db)
    finally:
        await db.dispose()
    return client_id, member.email


async def _logins(base: str, client_id: str, email: str, n: int) -> None:
    steps: dict[str, list[float]] = {"page": [], "form": [], "token": [], "total": []}
    for _ in range(n):
        async with AsyncOAuth2Client(
            client_id=client_id,
            redirect_uri=REDIRECT_URI,
            scope="member",
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
            timeout=10,
        ) as oauth:
            verifier = generate_token(48)
            url, _ = oauth.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
            t0 = time.perf_counter()
            page = await oauth.request("GET", url, withhold_token=True)
            t1 = time.perf_counter()
            form = {**hidden_fields(page.text), "username": email, "password": PASSWORD}
            answer = await oauth.request("POST", f"{base}/oauth/authorize", data=form, withhold_token=True)
            t2 = time.perf_counter()
            assert answer.status_code == 302, answer.text
            token = await oauth.fetch_token(
                f"{base}/oauth/token",
                authorization_response=answer.headers["location"],
                code_verifier=verifier,
            )
            t3 = time.perf_counter()
            assert token["access_token"]
        for name, value in (("page", t1 - t0), ("form", t2 - t1), ("token", t3 - t2), ("total", t3 - t0)):
            steps[name].append(value * 1000)

    def summary(values: list[float]) -> str:
        ordered = sorted(values)
        return (
            f"median {statistics.median(ordered):.1f} ms, p90 {ordered[int(0.9 * len(ordered)) - 1]:.1f} ms"
        )

    print(f"{n} logins (GET authorize + POST form + token exchange): {summary(steps['total'])}")
    for name in ("page", "form", "token"):
        print(f"  {name}: {summary(steps[name])}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=50)
    args = parser.parse_args()
    base_url = resolve_database_url()
    url = asyncio.run(recreate_database(base_url, DATABASE))
    try:
        asyncio.run(upgrade_to_head(url))
        client_id, email = asyncio.run(_prepare(url))
        port = free_port()
        with serving(url, port, f"http://127.0.0.1:{port}") as base:
            asyncio.run(_logins(base, client_id, email, args.logins))
    finally:
        asyncio.run(drop_database(base_url, DATABASE))


if __name__ == "__main__":
    main()
