"""Identity's front door: OAuth clients, and what can be done with their tokens: issue, revoke,
introspect; signing keys.

Clients and their secrets live in `clients`; access tokens are RFC 9068 JWTs (`tokens`) signed by
the rotating keys of `keys`; `verifier` checks them on every request without the database and
`propagation` tells every process's verifier at once when tokens stop being good. Revocation and
introspection are rare and authoritative, so they read the database directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity import propagation, tokens
from services.identity.clients import (
    MAX_NAME_LENGTH as MAX_CLIENT_NAME_LENGTH,
)
from services.identity.clients import (
    ClientCredentials,
    ClientView,
    RotatedSecret,
    authenticate_client,
    create_client,
    disable_client,
    hash_secret,
    list_clients,
    load_client,
    rotate_client_secret,
    token_allowed,
)
from services.identity.keys import (
    active_signing_key,
    ensure_signing_key,
    published_keys,
    rotate_signing_key,
)
from services.identity.member_apps import MemberApp, create_member_app, register_member_app
from services.identity.member_tokens import revoke_member_tokens
from services.identity.models import OAuthClient, RevokedToken
from services.identity.propagation import applied_everywhere
from services.identity.propagation import subscribe as subscribe_verifier
from services.identity.verifier import TokenVerifier
from shared.access import ADMIN_SCOPES
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Unauthenticated
from shared.settings import get_settings

__all__ = [
    "MAX_CLIENT_NAME_LENGTH",
    "ClientCredentials",
    "ClientView",
    "MemberApp",
    "Revocation",
    "RotatedSecret",
    "TokenVerifier",
    "applied_everywhere",
    "authenticate_client",
    "create_client",
    "create_member_app",
    "disable_client",
    "ensure_signing_key",
    "grant_scope",
    "hash_secret",
    "introspect",
    "issue_token",
    "jwks",
    "list_clients",
    "load_client",
    "register_member_app",
    "revoke_member_tokens",
    "revoke_token",
    "rotate_client_secret",
    "rotate_signing_key",
    "subscribe_verifier",
]


@dataclass(frozen=True)
class Revocation:
    jti: str
    expires_at: float  # the token's `exp`: after it, nobody needs to remember the revocation
    notice: str  # of the NOTIFY the revoking transaction sends, for `propagation.applied_everywhere`


def grant_scope(allowed: Iterable[str], requested: str | None) -> str:
    """The scope of a new token: any subset of the client's scopes; none asked means all of them;
    asking for more is refused (DomainError INVALID_SCOPE), never silently narrowed."""
    allowed_set = set(allowed)
    if requested is None or not requested.strip():
        return " ".join(sorted(allowed_set))
    asked = set(requested.split())
    extra = sorted(asked - allowed_set)
    if extra:
        raise DomainError.single(
            UserErrorCode.INVALID_SCOPE, f"not allowed for this client: {' '.join(extra)}", field="scope"
        )
    return " ".join(sorted(asked))


def token_response(client: OAuthClient, scope: str, key: ECKey) -> dict[str, Any]:
    """A signed access token for `client` and the RFC 6749 section 5.1 response around it."""
    claims = tokens.access_token_claims(
        client_id=client.client_id,
        scope=scope,
        partner_id=client.partner_id,
        secret_version=client.secret_version,
    )
    return {
        "access_token": tokens.sign(claims, key),
        "token_type": "Bearer",
        "expires_in": get_settings().token_ttl_seconds,
        "scope": scope,
    }


async def issue_token(
    session: AsyncSession, client: OAuthClient, requested_scope: str | None = None
) -> dict[str, Any]:
    """A token for an already authenticated client, outside the HTTP endpoint (scripts, tests).
    Same claims and scope rules as `POST /oauth/token`."""
    scope = grant_scope(client.allowed_scopes, requested_scope)
    key = await active_signing_key(session)
    if key is None:
        raise RuntimeError("no active signing key: run ensure_signing_key first (the gateway does)")
    return token_response(client, scope, key)


async def jwks(session: AsyncSession) -> dict[str, Any]:
    """The JWK Set resource servers verify tokens with (RFC 7517), retired keys included."""
    return {"keys": await published_keys(session)}


async def _decode(session: AsyncSession, token: str, *, check_expiry: bool) -> dict[str, Any]:
    published = {jwk["kid"]: jwk for jwk in await published_keys(session)}

    async def key_for(kid: str) -> ECKey | None:
        jwk = published.get(kid)
        return ECKey.import_key(jwk) if jwk is not None else None

    return await tokens.decode(token, key_for, check_expiry=check_expiry)


def _may_see(caller: OAuthClient | None, claims: dict[str, Any]) -> bool:
    """A client may revoke or introspect its own tokens, an admin client anyone's; no caller
    means a trusted in-process call (the command line)."""
    if caller is None or claims.get("client_id") == caller.client_id:
        return True
    return caller.partner_id is None and bool(set(caller.allowed_scopes) & ADMIN_SCOPES)


async def revoke_token(
    session: AsyncSession, token: str, *, caller: OAuthClient | None = None
) -> Revocation | None:
    """RFC 7009: record the token's id as revoked, or None when there was nothing to revoke
    (invalid, foreign or unknown tokens are ignored: the endpoint answers the same either way).

    The caller commits, which delivers the NOTIFY that tells every gateway's verifier, then tells
    its own process's verifier (`revoked_locally`) and waits for `propagation.applied_everywhere`.
    """
    try:
        claims = await _decode(session, token, check_expiry=False)
    except Unauthenticated:
        return None
    if not _may_see(caller, claims):
        return None
    await session.execute(
        insert(RevokedToken)
        .values(jti=str(claims["jti"]), expires_at=datetime.fromtimestamp(claims["exp"], UTC))
        .on_conflict_do_nothing(index_elements=[RevokedToken.jti])
    )
    expires_at = float(claims["exp"])
    notice = await propagation.notify_revoked(session, claims["jti"], expires_at)
    return Revocation(jti=claims["jti"], expires_at=expires_at, notice=notice)


async def introspect(
    session: AsyncSession, token: str, *, caller: OAuthClient | None = None
) -> dict[str, Any]:
    """RFC 7662. `{"active": false}` and nothing more for anything invalid, expired, revoked, of
    a disabled client or issued before its secret was rotated, or not the caller's to see (so
    introspection cannot probe other clients' tokens)."""
    inactive: dict[str, Any] = {"active": False}
    try:
        claims = await _decode(session, token, check_expiry=True)
    except Unauthenticated:
        return inactive
    if not _may_see(caller, claims):
        return inactive
    revoked = await session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == claims["jti"]))
    if revoked is not None:
        return inactive
    if not await token_allowed(session, claims["client_id"], tokens.secret_version(claims)):
        return inactive
    answer: dict[str, Any] = {
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
    if claims.get("partner_id") is not None:
        answer["partner_id"] = claims["partner_id"]
    return answer
