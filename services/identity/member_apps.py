"""Member apps: public OAuth clients (RFC 6749 section 2.1) that sign members in with the
authorization code and PKCE, and whose only scope is `member`.

A public client holds no secret (an app on a phone or in a browser cannot keep one), so what
stops another app from posing as it is the exact redirect URI: codes go only to a URI registered
here, compared as whole strings (OAuth 2.0 Security BCP section 4.1.3, no patterns, no prefixes).
Registered URIs are absolute https URIs, or http on the loopback address for native apps and
development (RFC 8252 section 7.3), and never carry a fragment (RFC 6749 section 3.1.2).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.clients import MANAGING_SCOPE, MAX_NAME_LENGTH
from services.identity.models import OAuthClient
from shared import audit_log
from shared.access import MEMBER_SCOPE, Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import Validator

MAX_REDIRECT_URIS = 10
MAX_REDIRECT_URI_LENGTH = 2000
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class MemberApp:
    client_id: str
    name: str
    redirect_uris: list[str]


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot be registered as a redirect URI, or None when it can."""
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        return f"a redirect URI may be at most {MAX_REDIRECT_URI_LENGTH} characters"
    if any(ch.isspace() or ord(ch) < 32 for ch in uri):
        return "a redirect URI contains no spaces or control characters"
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return f"{uri!r} is not a URI"
    if not parts.scheme or not parts.netloc or not host:
        return f"{uri!r} is not an absolute URI (scheme and host)"
    if "#" in uri:
        return "a redirect URI must not have a fragment (RFC 6749 section 3.1.2)"
    if parts.username is not None or parts.password is not None:
        return "a redirect URI must not carry user credentials"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return None
    return "a redirect URI must use https (http only on 127.0.0.1, localhost or [::1])"


async def create_member_app(session: AsyncSession, *, name: str, redirect_uris: Iterable[str]) -> MemberApp:
    """A public client with scope `member` and exactly these redirect URIs. The caller commits.
    Bad input is a DomainError naming `name` or `redirectUris`."""
    uris = list(dict.fromkeys(u.strip() for u in redirect_uris))
    v = Validator()
    v.text(name, "name", max_length=MAX_NAME_LENGTH)
    if v.check(bool(uris), "redirectUris", UserErrorCode.REQUIRED, "a member app needs a redirect URI"):
        v.check(
            len(uris) <= MAX_REDIRECT_URIS,
            "redirectUris",
            UserErrorCode.TOO_LONG,
            f"at most {MAX_REDIRECT_URIS} redirect URIs",
        )
        for uri in uris:
            problem = redirect_uri_problem(uri)
            if problem is not None:
                v.add("redirectUris", UserErrorCode.INVALID, problem)
    v.raise_if_any()
    client_id = "app_" + secrets.token_hex(10)
    session.add(
        OAuthClient(
            client_id=client_id,
            secret_hash="",  # a public client has no secret; an empty hash matches none
            name=name.strip(),
            partner_id=None,
            allowed_scopes=[MEMBER_SCOPE],
            public=True,
            redirect_uris=uris,
        )
    )
    await session.flush()
    return MemberApp(client_id=client_id, name=name.strip(), redirect_uris=uris)


async def register_member_app(
    db: Database, principal: Principal, *, name: str, redirect_uris: Iterable[str]
) -> MemberApp:
    """`createMemberApp`: an admin (admin:partners) registers a member app (audit-logged)."""
    principal.require_admin(MANAGING_SCOPE)
    async with db.sessions() as session, session.begin():
        app = await create_member_app(session, name=name, redirect_uris=redirect_uris)
        await audit_log.record(
            session,
            principal,
            "client.create_member_app",
            f"client:{app.client_id}",
            {"name": app.name, "redirect_uris": app.redirect_uris},
        )
    return app


async def load_member_app(session: AsyncSession, client_id: str) -> OAuthClient | None:
    """An enabled public client by id; None for anything else (unknown, disabled, confidential)."""
    if not client_id or len(client_id) > 200:
        return None
    return await session.scalar(
        select(OAuthClient).where(
            OAuthClient.client_id == client_id,
            OAuthClient.public.is_(True),
            OAuthClient.disabled_at.is_(None),
        )
    )
