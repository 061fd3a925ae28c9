"""Checking access tokens on every request without touching the database on the hot path.

One `TokenVerifier` per process. Public keys are cached by `kid`; a token with an unknown kid (a
rotation made by another process) reloads them, at most once per `key_reload_interval`, and
requests arriving meanwhile share that one reload instead of queueing one each — so tokens with
made-up kids cannot turn into a query per request nor into a growing queue. Revoked token ids are
re-read from the database at most every REVOCATION_CACHE_SECONDS; a revocation made through this
process applies at once and survives any re-read that raced with it. A verified token is
remembered until it expires, so a busy client pays the signature check once, not per request.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import select

from services.identity import tokens
from services.identity.keys import published_keys
from services.identity.models import RevokedToken
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.errors import Unauthenticated
from shared.settings import get_settings

CACHE_SIZE = 10_000


class TokenVerifier:
    def __init__(
        self,
        db: Database,
        *,
        revocation_cache_seconds: float | None = None,
        key_reload_interval: float = 1.0,
    ):
        self.db = db
        self.revocation_cache_seconds = (
            get_settings().revocation_cache_seconds
            if revocation_cache_seconds is None
            else revocation_cache_seconds
        )
        self.key_reload_interval = key_reload_interval
        self._keys: dict[str, ECKey] = {}
        self._keys_loaded_at = float("-inf")  # monotonic time the last reload started
        self._reload_lock = asyncio.Lock()
        self._revoked: frozenset[str] = frozenset()  # from the database
        self._revoked_here: dict[str, float] = {}  # jti -> exp, revoked through this process
        self._revoked_loaded_at = float("-inf")
        self._verified: OrderedDict[str, tuple[Principal, dict[str, Any]]] = OrderedDict()

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller of a request from its Authorization header, or Unauthenticated."""
        if not authorization or not authorization.strip():
            raise Unauthenticated("missing access token: send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        principal, _ = await self.verify(token.strip())
        return principal

    async def verify(self, token: str) -> tuple[Principal, dict[str, Any]]:
        """The principal and claims of a valid, unexpired, unrevoked token, or Unauthenticated."""
        await self._refresh_revocations()
        hit = self._verified.get(token)
        if hit is not None:
            principal, claims = hit
            if claims["exp"] <= clock.now().timestamp():
                del self._verified[token]
                raise Unauthenticated("the access token has expired: ask the token endpoint for a new one")
        else:
            claims = await tokens.decode(token, self.key)
            principal = tokens.principal_from(claims)
            self._verified[token] = (principal, claims)
            if len(self._verified) > CACHE_SIZE:
                self._verified.popitem(last=False)
        if self.is_revoked(principal.token_id or ""):
            raise Unauthenticated("the access token was revoked")
        return principal, claims

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked or jti in self._revoked_here

    def revoked_locally(self, jti: str, expires_at: float) -> None:
        """Record a revocation committed through this process; it applies to the next request."""
        self._revoked_here[jti] = expires_at

    async def key(self, kid: str) -> ECKey | None:
        """The public key for `kid`, reloading the published keys if it is unknown."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        asked_at = time.monotonic()
        async with self._reload_lock:
            # A reload that started after this request asked already saw every key it could.
            if kid not in self._keys and self._keys_loaded_at < asked_at:
                wait = self.key_reload_interval - (time.monotonic() - self._keys_loaded_at)
                if wait > 0:
                    await asyncio.sleep(wait)
                started = time.monotonic()
                async with self.db.sessions() as session:
                    published = await published_keys(session)
                self._keys = {jwk["kid"]: ECKey.import_key(jwk) for jwk in published}
                self._keys_loaded_at = started
        return self._keys.get(kid)

    async def _refresh_revocations(self) -> None:
        """Re-read revoked ids if the copy is older than the cache period. One request pays the
        query; concurrent ones use the previous copy. A failing query fails that request (closed):
        a revoked token must not pass because the database blinked."""
        started = time.monotonic()
        if started - self._revoked_loaded_at < self.revocation_cache_seconds:
            return
        self._revoked_loaded_at = started
        now = clock.now()
        async with self.db.sessions() as session:
            rows = await session.scalars(select(RevokedToken.jti).where(RevokedToken.expires_at > now))
            self._revoked = frozenset(rows)
        # Local revocations stay until their token expires: a re-read that began before one was
        # committed must not forget it.
        stamp = now.timestamp()
        self._revoked_here = {j: exp for j, exp in self._revoked_here.items() if exp > stamp}
