"""Checking access tokens on every request without touching the database on the hot path.

One `TokenVerifier` per process. Public keys are cached by `kid`; a token with an unknown kid (a
rotation made by another process) reloads them, at most once per `key_reload_interval`, and
requests arriving meanwhile share that one reload instead of queueing one each — so tokens with
made-up kids cannot turn into a query per request nor into a growing queue. A verified token is
remembered until it expires, so a busy client pays the signature check once, not per request.

What takes a valid token away is kept in memory too: revoked token ids, members whose tokens were
all revoked up to an instant (erasure), disabled clients, and each
rotated client's current secret version (a token issued under an older one is refused). Changes
arrive at once through `propagation.subscribe` (LISTEN/NOTIFY from the committing
transaction) and are re-read from the database at least every REVOCATION_CACHE_SECONDS, the bound
should the listener be disconnected. A change heard of survives any re-read that raced with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import Text, cast, null, select, union_all

from services.identity import tokens
from services.identity.keys import published_keys
from services.identity.models import MemberTokenRevocation, OAuthClient, RevokedToken
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.errors import Unauthenticated
from shared.settings import get_settings

CACHE_SIZE = 10_000


@dataclass(frozen=True)
class ClientState:
    """What the verifier must know of a client: only clients disabled or rotated are kept."""

    disabled: bool
    secret_version: int


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
        self._revoked_here: dict[str, float] = {}  # jti -> exp, revoked here or heard of
        self._revoked_loaded_at = float("-inf")
        self._clients: dict[str, ClientState] = {}  # from the database
        # Heard of (notification or this process): client -> (state, monotonic time heard).
        self._clients_heard: dict[str, tuple[ClientState, float]] = {}
        # member id -> tokens issued at or before this instant (epoch seconds) are refused.
        self._members_revoked: dict[int, float] = {}  # from the database
        self._members_heard: dict[int, float] = {}  # heard of, kept until the tokens expire
        self._verified: OrderedDict[str, tuple[Principal, dict[str, Any]]] = OrderedDict()
        self._changed = asyncio.Event()  # set (and replaced) whenever a token may have gone bad

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
        if time.monotonic() - self._revoked_loaded_at >= self.revocation_cache_seconds:
            await self._refresh()  # tested here first: most requests need no coroutine for it
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
        if principal.member_id is not None and self.member_token_revoked(principal.member_id, claims["iat"]):
            raise Unauthenticated("the access token was revoked: sign in again")
        state = self.client_state(principal.client_id)
        if state is not None:
            if state.disabled:
                raise Unauthenticated("the access token's client has been disabled")
            if tokens.secret_version(claims) < state.secret_version:
                raise Unauthenticated(
                    "the access token was issued before its client's secret was rotated:"
                    " ask the token endpoint for a new one with the new secret"
                )
        return principal, claims

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked or jti in self._revoked_here

    def member_token_revoked(self, member_id: int, issued_at: float) -> bool:
        """Whether every token of `member_id` issued at `issued_at` was revoked (same second
        included: `iat` is whole seconds, and a revocation must not miss a token of its second)."""
        before = max(self._members_revoked.get(member_id, 0.0), self._members_heard.get(member_id, 0.0))
        return before > 0 and issued_at <= before

    def member_revoked(self, member_id: int, before: float) -> None:
        """Record a committed "tokens of this member up to `before` are revoked"."""
        self._members_heard[member_id] = max(before, self._members_heard.get(member_id, 0.0))

    def client_state(self, client_id: str) -> ClientState | None:
        heard = self._clients_heard.get(client_id)
        return heard[0] if heard is not None else self._clients.get(client_id)

    def revoked_locally(self, jti: str, expires_at: float) -> None:
        """Record a committed revocation (made here, or heard of); it applies to the next request."""
        self._revoked_here[jti] = expires_at
        self._signal_change()

    def client_changed(self, client_id: str, *, disabled: bool, secret_version: int) -> None:
        """Record a client's state after a committed change; it applies to the next request."""
        self._clients_heard[client_id] = (ClientState(disabled, secret_version), time.monotonic())
        self._signal_change()

    def refresh_soon(self) -> None:
        """Re-read everything before the next request (changes may have gone unheard)."""
        self._revoked_loaded_at = float("-inf")
        self._signal_change()

    def _signal_change(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_change(self, seconds: float) -> None:
        """Return when something that can invalidate tokens was heard of, or after `seconds`:
        what long-lived connections (subscription sockets) wait on to check their token again."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

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

    async def _refresh(self) -> None:
        """Re-read revoked ids and disabled or rotated clients if the copy is older than the cache
        period. One request pays the queries; concurrent ones use the previous copy. A failing
        query fails that request (closed): a revoked token must not pass because the database
        blinked."""
        started = time.monotonic()
        if started - self._revoked_loaded_at < self.revocation_cache_seconds:
            return
        self._revoked_loaded_at = started
        now = clock.now()
        async with self.db.sessions() as session:
            # Revoked token ids and members' "revoked up to" marks in one statement (a member id
            # in `key`, the mark in `before`). Older marks refuse nothing: every token issued
            # before them has expired.
            horizon = now - timedelta(seconds=get_settings().token_ttl_seconds + tokens.CLOCK_SKEW_SECONDS)
            tokens_revoked = select(RevokedToken.jti.label("key"), null().label("before")).where(
                RevokedToken.expires_at > now
            )
            members_revoked = select(
                cast(MemberTokenRevocation.member_id, Text), MemberTokenRevocation.revoked_before
            ).where(MemberTokenRevocation.revoked_before > horizon)
            rows = (await session.execute(union_all(tokens_revoked, members_revoked))).all()
            revoked = frozenset(row.key for row in rows if row.before is None)
            members = {int(row.key): row.before.timestamp() for row in rows if row.before is not None}
            clients = await session.execute(
                select(OAuthClient.client_id, OAuthClient.disabled_at, OAuthClient.secret_version).where(
                    OAuthClient.disabled_at.is_not(None) | (OAuthClient.secret_version > 0)
                )
            )
            self._clients = {
                row.client_id: ClientState(row.disabled_at is not None, row.secret_version) for row in clients
            }
            self._members_revoked = members
            self._revoked = revoked
        # Revocations heard of stay until their token expires, and client changes heard of until a
        # re-read that began after them: a re-read that began before one was committed must not
        # forget it.
        stamp = now.timestamp()
        self._revoked_here = {j: exp for j, exp in self._revoked_here.items() if exp > stamp}
        oldest = stamp - get_settings().token_ttl_seconds - tokens.CLOCK_SKEW_SECONDS
        self._members_heard = {m: t for m, t in self._members_heard.items() if t > oldest}
        self._clients_heard = {c: heard for c, heard in self._clients_heard.items() if heard[1] >= started}
