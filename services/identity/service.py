"""OAuth clients, and what can be done with their tokens: issue, revoke, introspect.

Client secrets are 256-bit random strings shown once; the database keeps a SHA-256 of them (a slow
password hash adds nothing against that much entropy and would make the token endpoint a CPU
sink). Access tokens are RFC 9068 JWTs signed by `keys`; `verifier` checks them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.keys import ensure_signing_key, published_keys, rotate_signing_key
from services.identity.models import OAuthClient
from services.identity.verifier import TokenVerifier, decode_token
from shared.access import ADMIN_SCOPES, ALL_SCOPES
from shared.errors import Unauthenticated, Validator

__all__ = [
    "ClientCredentials",
    "TokenVerifier",
    "authenticate_client",
    "create_client",
    "ensure_signing_key",
    "introspect",
    "jwks",
    "revoke_token",
    "rotate_signing_key",
]


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str
    scopes: list[str]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_client(
    session: AsyncSession, *, name: str, scopes: Iterable[str], partner_id: int | None = None
) -> ClientCredentials:
    """The caller commits; the secret is in the return value and nowhere else."""
    allowed = sorted(set(scopes))
    v = Validator()
    v.text(name, "name", max_length=200)
    unknown = [s for s in allowed if s not in ALL_SCOPES]
    v.check(not unknown, "scopes", "UNKNOWN_SCOPE", f"unknown scopes: {', '.join(unknown)}")
    v.check(bool(allowed), "scopes", "REQUIRED", "a client needs at least one scope")
    if partner_id is not None:
        v.check(
            not set(allowed) & ADMIN_SCOPES,
            "scopes",
            "INVALID",
            "partner credentials cannot carry admin scopes",
        )
    v.raise_if_any()
    client_id = "cl_" + secrets.token_hex(10)
    secret = secrets.token_urlsafe(32)
    session.add(
        OAuthClient(
            client_id=client_id,
            secret_hash=hash_secret(secret),
            name=name,
            partner_id=partner_id,
            allowed_scopes=allowed,
        )
    )
    await session.flush()
    return ClientCredentials(client_id, secret, allowed)


async def authenticate_client(
    session: AsyncSession, client_id: str, client_secret: str
) -> OAuthClient | None:
    client = await session.scalar(
        select(OAuthClient).where(OAuthClient.client_id == client_id, OAuthClient.disabled_at.is_(None))
    )
    # Compare even when the client is unknown, so timing does not tell which ids exist.
    expected = client.secret_hash if client else hash_secret(secrets.token_urlsafe(32))
    if not hmac.compare_digest(expected, hash_secret(client_secret)) or client is None:
        return None
    return client


async def load_client(session: AsyncSession, client_id: str) -> OAuthClient | None:
    return await session.scalar(
        select(OAuthClient).where(OAuthClient.client_id == client_id, OAuthClient.disabled_at.is_(None))
    )


async def jwks(session: AsyncSession) -> dict[str, Any]:
    return {"keys": await published_keys(session)}


def _may_see(caller: OAuthClient, claims: dict[str, Any]) -> bool:
    """A client may revoke or introspect its own tokens; an admin client anyone's."""
    return claims.get("client_id") == caller.client_id or bool(
        caller.partner_id is None and set(caller.allowed_scopes) & ADMIN_SCOPES
    )


async def revoke_token(
    session: AsyncSession, verifier: TokenVerifier, caller: OAuthClient, token: str
) -> None:
    """RFC 7009: unknown, invalid or foreign tokens are ignored, and the answer is the same."""
    try:
        claims = await decode_token(verifier, token, check_expiry=False)
    except Unauthenticated:
        return
    if not _may_see(caller, claims):
        return
    await session.execute(
        text("INSERT INTO revoked_tokens (jti, expires_at) VALUES (:j, :e) ON CONFLICT DO NOTHING"),
        {"j": claims["jti"], "e": datetime.fromtimestamp(claims["exp"], UTC)},
    )
    await session.commit()
    verifier.revoked_locally(claims["jti"])


async def introspect(verifier: TokenVerifier, caller: OAuthClient, token: str) -> dict[str, Any]:
    """RFC 7662. Inactive for anything invalid, expired, revoked or not the caller's to see."""
    try:
        principal, claims = await verifier.verify(token)
    except Unauthenticated:
        return {"active": False}
    if not _may_see(caller, claims):
        return {"active": False}
    answer = {
        "active": True,
        "scope": claims["scope"],
        "client_id": claims["client_id"],
        "sub": claims["sub"],
        "iss": claims["iss"],
        "aud": claims["aud"],
        "exp": claims["exp"],
        "iat": claims["iat"],
        "jti": claims["jti"],
        "token_type": "Bearer",
    }
    if principal.partner_id is not None:
        answer["partner_id"] = principal.partner_id
    return answer
