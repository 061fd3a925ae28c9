"""The bearer-token guard in front of every protected route: GraphQL, its subscriptions and the
settlement files.

Authentication happens before anything reads the request body; body size is `BodyLimit`'s job
(`shared.http`), wrapped around this guard so that an oversized declared body is refused even
before the token is checked.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.access import Principal
from shared.errors import Unauthenticated
from shared.http import error_response

PRINCIPAL_KEY = "coalition.principal"


def principal_of(connection: HTTPConnection) -> Principal:
    """The verified caller; only reachable behind `RequireToken`."""
    principal: Principal = connection.scope[PRINCIPAL_KEY]
    return principal


class RequireToken:
    """Rejects a request without a valid bearer token before the wrapped app sees it: HTTP 401
    with a GraphQL-shaped error (`UNAUTHENTICATED`), so clients and proxies both understand it. On
    success the principal is in the scope.

    A WebSocket handshake is let through: browsers cannot put a header on one, so the GraphQL view
    authenticates the socket at `connection_init`, from its payload or this header
    (`services.gateway.sockets`), and closes it with 4401 on a missing or bad token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            connection = HTTPConnection(scope)
            try:
                principal = await connection.app.state.verifier.authenticate(
                    connection.headers.get("authorization")
                )
            except Unauthenticated as exc:
                response = error_response(
                    401, exc.code, str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
                )
                await response(scope, receive, send)
                return
            scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)
