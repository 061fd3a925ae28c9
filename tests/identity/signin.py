"""Helpers for the member sign-in tests: a member app, a member with a password, and a browser's
walk through the sign-in page (GET the page, post its form)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from services.identity import service as identity
from services.members import credentials
from shared.database import Database
from tests.factories import enroll, make_partner, unique

REDIRECT_URI = "http://127.0.0.1:9/callback"
PASSWORD = "correct horse battery"
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@dataclass(frozen=True)
class SignedUpMember:
    id: int
    member_number: str
    email: str


async def member_app(db: Database, *redirect_uris: str) -> str:
    async with db.sessions() as session:
        app = await identity.create_member_app(
            session, name="Test app <&>", redirect_uris=list(redirect_uris or [REDIRECT_URI])
        )
        await session.commit()
    return app.client_id


async def member_with_password(db: Database) -> SignedUpMember:
    partner = await make_partner(db)
    email = f"{unique('m')}@example.com"
    member = await enroll(db, partner, email=email)
    await credentials.set_password(db, member.id, PASSWORD)
    return SignedUpMember(member.id, member.member_number, email)


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page)}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def authorize_params(client_id: str, verifier: str, /, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "member",
        "state": "st-" + generate_token(8),
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        **overrides,
    }
    return {k: v for k, v in params.items() if v is not None}


async def submit_login(
    browser: httpx.AsyncClient, params: dict[str, str], username: str, password: str = PASSWORD
) -> httpx.Response:
    """GET the sign-in page, post its form as a browser would (its cookie included)."""
    page = await browser.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    form = {**hidden_fields(page.text), "username": username, "password": password}
    return await browser.post("/oauth/authorize", data=form)


async def sign_in(
    browser: httpx.AsyncClient, client_id: str, username: str, verifier: str | None = None
) -> tuple[str, str]:
    """A code (and the verifier it needs) for `username`."""
    verifier = verifier or generate_token(48)
    answer = await submit_login(browser, authorize_params(client_id, verifier), username)
    assert answer.status_code == 302, answer.text
    return query_of(answer.headers["location"])["code"], verifier


async def exchange(browser: httpx.AsyncClient, client_id: str, code: str, verifier: str) -> httpx.Response:
    return await browser.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
        },
    )


async def refresh(browser: httpx.AsyncClient, client_id: str, refresh_token: str) -> httpx.Response:
    return await browser.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
    )
