"""A new password ends every session of the member, on every gateway (issue 10).

Two real `coalition serve` processes (one database, one issuer, as behind a load balancer; their
periodic re-read is an hour, so only LISTEN/NOTIFY can refuse a token in time) and a real SMTP
server (aiosmtpd). A member signs in on gateway A with the authorization code and PKCE, resets the
password through A's account pages with the code mailed to them; right after the page answers,
the old access token gets 401 from /graphql on A and on B, and the old refresh token
`invalid_grant`, while a sign-in with the new password works at once. The same for support's
`coalition members set-password`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest
from aiosmtpd.controller import Controller
from authlib.common.security import generate_token

from services.members import credentials
from shared.database import Database
from tests.e2e.conftest import free_port
from tests.factories import enroll, make_partner, unique
from tests.identity.gateways import serving
from tests.identity.signin import (
    PASSWORD,
    authorize_params,
    exchange,
    member_app,
    query_of,
    refresh,
    submit_login,
)
from tests.members.conftest import Inbox, code_of
from tests.members.test_support_cli import _cli

NEW_PASSWORD = "a brand new passphrase"
VIEWER = {"query": "{ viewer { clientId scopes } }"}


@dataclass(frozen=True)
class Gateways:
    a: str
    b: str
    inbox: Inbox


@dataclass(frozen=True)
class Session:
    access_token: str
    refresh_token: str


@pytest.fixture(scope="module")
def gateways(database_url: str) -> Iterator[Gateways]:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    first, second = free_port(), free_port()
    issuer = f"http://127.0.0.1:{first}"
    mail = {"SMTP_URL": f"smtp://127.0.0.1:{smtp.port}"}
    try:
        with ExitStack() as stack:
            yield Gateways(
                stack.enter_context(serving(database_url, first, issuer, **mail)),
                stack.enter_context(serving(database_url, second, issuer, **mail)),
                inbox,
            )
    finally:
        smtp.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def _member(db: Database) -> tuple[int, str, str]:
    partner = await make_partner(db)
    email = f"{unique('m')}@example.com"
    member = await enroll(db, partner, email=email)
    await credentials.set_password(db, member.id, PASSWORD)
    return member.id, member.member_number, email


async def _sign_in(base: str, client_id: str, username: str, password: str = PASSWORD) -> Session:
    """A browser's sign-in on `base` (the login page and its cookie), then the code exchanged."""
    verifier = generate_token(48)
    async with httpx.AsyncClient(base_url=base, timeout=30) as browser:
        answer = await submit_login(browser, authorize_params(client_id, verifier), username, password)
        assert answer.status_code == 302, answer.text
        code = query_of(answer.headers["location"])["code"]
        tokens = await exchange(browser, client_id, code, verifier)
    assert tokens.status_code == 200, tokens.text
    return Session(tokens.json()["access_token"], tokens.json()["refresh_token"])


async def _viewer(http: httpx.AsyncClient, base: str, token: str) -> int:
    answer = await http.post(f"{base}/graphql", json=VIEWER, headers={"Authorization": f"Bearer {token}"})
    return answer.status_code


async def _refresh_error(http: httpx.AsyncClient, base: str, client_id: str, token: str) -> str | None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as browser:
        answer = await refresh(browser, client_id, token)
    return answer.json().get("error") if answer.status_code != 200 else None


async def test_a_reset_through_the_pages_ends_every_session_on_every_gateway(
    gateways: Gateways, http: httpx.AsyncClient, db: Database
) -> None:
    client_id = await member_app(db)
    _, number, email = await _member(db)
    old = await _sign_in(gateways.a, client_id, email)
    other_member = await _member(db)
    bystander = await _sign_in(gateways.a, client_id, other_member[2])
    assert await _viewer(http, gateways.a, old.access_token) == 200
    assert await _viewer(http, gateways.b, old.access_token) == 200

    # Forgot the password: ask for a code, read it from the mail, set a new one, on A's pages.
    asked = await http.post(f"{gateways.a}/account/activate", data={"memberNumber": number, "email": email})
    assert asked.status_code == 200
    for _ in range(200):  # the mail goes out after the answer
        if gateways.inbox.to(email):
            break
        await asyncio.sleep(0.05)
    [mail] = gateways.inbox.to(email)
    assert "reset your password" in mail.get_body(("plain",)).get_content()
    done = await http.post(
        f"{gateways.a}/account/activate/confirm",
        data={"memberNumber": number, "code": code_of(mail), "password": NEW_PASSWORD},
    )
    assert done.status_code == 200 and "password is set" in done.text

    # The page answered once every gateway had applied it: the first request is refused, on both.
    assert await _viewer(http, gateways.b, old.access_token) == 401
    assert await _viewer(http, gateways.a, old.access_token) == 401
    assert await _refresh_error(http, gateways.a, client_id, old.refresh_token) == "invalid_grant"
    # Only this member's sessions: another member signed in on the same app keeps theirs.
    assert await _viewer(http, gateways.b, bystander.access_token) == 200

    # The old password is gone; the new one signs in at once, and that token works everywhere
    # (issued within the second of the revocation, yet not refused by it).
    assert await credentials.authenticate(db, email, PASSWORD) is None
    new = await _sign_in(gateways.a, client_id, email, NEW_PASSWORD)
    assert await _viewer(http, gateways.b, new.access_token) == 200
    assert await _viewer(http, gateways.a, new.access_token) == 200
    assert await _refresh_error(http, gateways.b, client_id, new.refresh_token) is None


async def test_a_refused_password_ends_nothing(
    gateways: Gateways, http: httpx.AsyncClient, db: Database, database_url: str
) -> None:
    client_id = await member_app(db)
    _, number, _ = await _member(db)
    session = await _sign_in(gateways.a, client_id, number)
    weak = _cli(database_url, "members", "set-password", number, stdin="short\n")
    assert weak.returncode == 2, weak.stdout + weak.stderr
    await asyncio.sleep(0.3)  # were anything sent, the gateways would have heard it by now
    assert await _viewer(http, gateways.b, session.access_token) == 200
    assert await _refresh_error(http, gateways.a, client_id, session.refresh_token) is None


async def test_support_set_password_ends_every_session(
    gateways: Gateways, http: httpx.AsyncClient, db: Database, database_url: str
) -> None:
    client_id = await member_app(db)
    _, number, email = await _member(db)
    old = await _sign_in(gateways.b, client_id, email)
    assert await _viewer(http, gateways.a, old.access_token) == 200

    done = _cli(database_url, "members", "set-password", number, stdin=f"{NEW_PASSWORD}\n")
    assert done.returncode == 0, done.stdout + done.stderr
    # The command line holds no listener, so it answers on commit; the gateways hear the NOTIFY
    # within milliseconds (their periodic re-read is an hour away: it cannot be what refuses).
    for base in (gateways.a, gateways.b):
        deadline = time.monotonic() + 2
        while await _viewer(http, base, old.access_token) != 401:
            assert time.monotonic() < deadline, f"{base} still accepts the token"
            await asyncio.sleep(0.02)
    assert await _refresh_error(http, gateways.a, client_id, old.refresh_token) == "invalid_grant"
    new = await _sign_in(gateways.b, client_id, number, NEW_PASSWORD)
    assert await _viewer(http, gateways.a, new.access_token) == 200
