"""Checking access tokens on every request without touching the database on the hot path.

Public keys are cached by `kid` (an unknown kid reloads them, at most once a second); revoked
token ids are refreshed from the database at most every REVOCATION_CACHE_SECONDS, and a revocation
made through this process applies at once. A verified token is remembered until it expires, so a
busy client pays the signature check once, not per request.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import text

from services.identity.keys import ALGORITHM, published_keys
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.errors import Unauthenticated
from shared.settings import get_settings

CACHE_SIZE = 10_000
KEY_RELOAD_INTERVAL = 1.0  # seconds


def audience() -> str:
    return f"{get_settings().issuer}/graphql"


class TokenVerifier:
    def __init__(self, db: Database):
        self.db = db
        self._keys: dict[str, ECKey] = {}
        self._keys_loaded = -KEY_RELOAD_INTERVAL
        self._reload_lock = asyncio.Lock()
        self._revoked: set[str] = set()
        self._revoked_loaded = 0.0
        self._verified: OrderedDict[str, tuple[Principal, dict[str, Any]]] = OrderedDict()

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("missing access token: send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        principal, _ = await self.verify(token.strip())
        return principal

    async def verify(self, token: str) -> tuple[Principal, dict[str, Any]]:
        await self._refresh_revocations()
        hit = self._verified.get(token)
        if hit is not None:
            principal, claims = hit
            if claims["exp"] <= clock.now().timestamp():
                self._verified.pop(token, None)
                raise Unauthenticated("the access token has expired")
        else:
            claims = await decode_token(self, token, check_expiry=True)
            scopes = frozenset(str(claims.get("scope", "")).split())
            principal = Principal(
                client_id=str(claims["client_id"]),
                scopes=scopes,
                partner_id=claims.get("partner_id"),
                token_id=str(claims["jti"]),
            )
            self._verified[token] = (principal, claims)
            if len(self._verified) > CACHE_SIZE:
                self._verified.popitem(last=False)
        if principal.token_id in self._revoked:
            raise Unauthenticated("the access token was revoked")
        return principal, claims

    def revoked_locally(self, jti: str) -> None:
        self._revoked.add(jti)

    async def key(self, kid: str) -> ECKey | None:
        """The public key for `kid`. An unknown kid reloads the keys (a rotation elsewhere), but
        at most once a second however many requests ask: they wait for the one reload."""
        if kid in self._keys:
            return self._keys[kid]
        async with self._reload_lock:
            if kid not in self._keys:
                wait = KEY_RELOAD_INTERVAL - (time.monotonic() - self._keys_loaded)
                if wait > 0:
                    await asyncio.sleep(wait)
                async with self.db.sessions() as session:
                    jwks = await published_keys(session)
                self._keys = {k["kid"]: ECKey.import_key(k) for k in jwks}
                self._keys_loaded = time.monotonic()
        return self._keys.get(kid)

    async def _refresh_revocations(self) -> None:
        now = time.monotonic()
        if now - self._revoked_loaded < get_settings().revocation_cache_seconds:
            return
        self._revoked_loaded = now
        async with self.db.sessions() as session:
            rows = await session.scalars(text("SELECT jti FROM revoked_tokens WHERE expires_at > now()"))
            # Revocations made here were committed before being added locally, so the database
            # answer includes them.
            self._revoked = set(rows)


async def decode_token(verifier: TokenVerifier, token: str, *, check_expiry: bool) -> dict[str, Any]:
    """Signature, type, issuer, audience and (optionally) lifetime, or Unauthenticated."""
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, UnicodeDecodeError) as exc:
        raise Unauthenticated("the access token is not a JWT") from exc
    if header.get("alg") != ALGORITHM or header.get("typ") != "at+jwt":
        raise Unauthenticated("the access token is not an access token of this server")
    key = await verifier.key(str(header.get("kid")))
    if key is None:
        raise Unauthenticated("the access token was signed by an unknown key")
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM]).claims
    except (JoseError, ValueError) as exc:
        raise Unauthenticated("the access token's signature is invalid") from exc
    settings = get_settings()
    if claims.get("iss") != settings.issuer or claims.get("aud") != audience():
        raise Unauthenticated("the access token was issued for another server")
    for name in ("exp", "iat", "jti", "client_id", "scope"):
        if name not in claims:
            raise Unauthenticated(f"the access token lacks the '{name}' claim")
    if check_expiry and claims["exp"] <= clock.now().timestamp():
        raise Unauthenticated("the access token has expired")
    return claims
