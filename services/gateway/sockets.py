"""Subscription sockets (graphql-transport-ws on /graphql): who is on the other end, for how long,
and how many of them.

A browser cannot set headers on a WebSocket, so the token may come in the `connection_init`
payload (`{"Authorization": "Bearer …"}`) as well as on the upgrade request's Authorization header
(the payload wins when both are there). The guard lets websockets through; the socket is
authenticated here, at `connection_init`:

- a missing or bad token closes it with 4401, a token that may subscribe to nothing (neither a
  member's nor a partner's with `members:read`) with 4403, a caller over its number of sockets
  in this process with 4429;
- once acknowledged, a watchdog re-checks the token whenever the verifier hears of a revocation, a
  disabled client or a rotated secret (`TokenVerifier.wait_for_change`, fed by LISTEN/NOTIFY),
  at its expiry, and every TOKEN_CHECK_SECONDS in any case (the bound if a notification is
  missed): a token no longer good closes the socket with 4401.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage

from shared.access import MEMBER_SCOPE, Principal
from shared.errors import Unauthenticated
from shared.graphql_error_codes import GraphQLErrorCode
from shared.graphql_types import Context

TOKEN_CHECK_SECONDS = 5.0
MAX_SUBSCRIPTIONS_PER_SOCKET = 10
MAX_SOCKETS_PER_MEMBER = 10  # a member's phone, tablet, browser tabs
MAX_SOCKETS_PER_CLIENT = 5_000  # a partner's tills share its client; member apps count per member
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY = 4429

# Nobody: the principal of a socket until its connection_init is authenticated.
NOBODY = Principal(client_id="", scopes=frozenset())


@dataclass
class SocketContext(Context):
    """A socket's context: shared by every operation on it, authenticated at connection_init."""

    websocket: Any = None
    verifier: Any = None
    header_authorization: str | None = None
    connection_params: dict[str, Any] | None = None
    token: str | None = None
    expires_at: float = 0.0  # the token's exp (epoch seconds)
    slot: str | None = None  # its place in SocketCounts, once authenticated


class SocketRefused(Exception):
    """connection_init refused: the socket is closed with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        # A close frame's reason is at most 123 bytes.
        self.reason = reason.encode()[:120].decode(errors="ignore")


class SocketCounts:
    """This process's open sockets by caller (the member, or the partner's client)."""

    def __init__(self) -> None:
        self._open: Counter[str] = Counter()

    @staticmethod
    def key(principal: Principal) -> tuple[str, int]:
        if principal.member_id is not None:
            return f"member:{principal.member_id}", MAX_SOCKETS_PER_MEMBER
        return f"client:{principal.client_id}", MAX_SOCKETS_PER_CLIENT

    def claim(self, principal: Principal) -> str:
        key, limit = self.key(principal)
        if self._open[key] >= limit:
            raise SocketRefused(CLOSE_TOO_MANY, f"too many sockets open for this caller (at most {limit})")
        self._open[key] += 1
        return key

    def release(self, key: str) -> None:
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]

    @property
    def total(self) -> int:
        return sum(self._open.values())


def authorization_of(context: SocketContext) -> str | None:
    params = context.connection_params or {}
    given = params.get("Authorization", params.get("authorization"))
    if isinstance(given, str) and given.strip():
        return given
    return context.header_authorization


async def authenticate(context: SocketContext) -> None:
    """Sets the socket's principal and token from connection_init, or raises SocketRefused."""
    authorization = authorization_of(context)
    try:
        principal = await context.verifier.authenticate(authorization)
        token = (authorization or "").strip().partition(" ")[2].strip()
        _, claims = await context.verifier.verify(token)
    except Unauthenticated as exc:
        raise SocketRefused(CLOSE_UNAUTHENTICATED, str(exc)) from exc
    if MEMBER_SCOPE not in principal.scopes and "members:read" not in principal.scopes:
        raise SocketRefused(
            CLOSE_FORBIDDEN, "this token may not subscribe: it needs `member` or `members:read`"
        )
    context.principal = principal
    context.token = token
    context.expires_at = float(claims["exp"])


class CoalitionTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's graphql-transport-ws handler, with our close codes at connection_init, a slot
    per caller, and the token watchdog."""

    _watchdog: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)  # calls view.on_ws_connect
        except SocketRefused as exc:
            await self.websocket.close(code=exc.code, reason=exc.reason)
            return
        if self.connection_acknowledged and self._watchdog is None:
            context: SocketContext = self.context  # type: ignore[assignment]
            self._watchdog = asyncio.create_task(self._watch_token(context), name="socket-token-watchdog")

    async def send_message(self, message: Any) -> None:
        """Errors as over HTTP: each with its code; an unexpected one masked (it may carry
        internals; the schema's masking extension does not see subscription events)."""
        if message.get("type") == "next":
            for error in message.get("payload", {}).get("errors") or ():
                extensions = error.setdefault("extensions", {})
                if "code" not in extensions:
                    error["message"] = "Internal error."
                    extensions["code"] = GraphQLErrorCode.INTERNAL_SERVER_ERROR.value
        await super().send_message(message)

    async def _watch_token(self, context: SocketContext) -> None:
        verifier = context.verifier
        while True:
            left = context.expires_at - time.time()
            await verifier.wait_for_change(max(0.0, min(TOKEN_CHECK_SECONDS, left + 0.05)))
            try:
                await verifier.verify(context.token or "")
            except Unauthenticated as exc:
                with contextlib.suppress(Exception):
                    await self.websocket.close(
                        code=CLOSE_UNAUTHENTICATED, reason=SocketRefused(0, str(exc)).reason
                    )
                return
            except Exception:  # the database blinked: check again on the next round
                continue

    async def shutdown(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        context: SocketContext = self.context  # type: ignore[assignment]
        if context.slot is not None:
            self.view.sockets.release(context.slot)  # type: ignore[attr-defined]
            context.slot = None
        await super().shutdown()
