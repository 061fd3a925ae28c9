"""The Starlette application: GraphQL behind bearer tokens, the OAuth endpoints, health.

The gateway only assembles: tokens are verified by identity, rules live in the services.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.asgi import GraphQL

from services.gateway.availability import RETRY_AFTER_SECONDS, DatabaseOutages, outage_of
from services.gateway.schema import build_schema
from services.identity import http as identity_http
from services.identity import service as identity
from services.settlement import http as settlement_http
from shared.database import Database, resolve_database_url
from shared.errors import Unauthenticated
from shared.graphql_types import Context
from shared.migrate import ensure_schema_current

log = logging.getLogger("coalition.gateway")
PRINCIPAL_KEY = "coalition.principal"


class CoalitionGraphQL(GraphQL[Context, None]):
    async def get_context(self, request: Any, response: Any = None) -> Context:
        return Context(principal=request.scope[PRINCIPAL_KEY], db=request.app.state.db)


MAX_BODY_BYTES = 256 * 1024  # a GraphQL request is text; the token limit bounds what is parsed


class RequireToken:
    """Rejects a request without a valid bearer token before GraphQL sees it: HTTP 401 with a
    GraphQL-shaped error, so clients and proxies both understand it. Oversized bodies are refused
    before anything reads them."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            request = Request(scope)
            length = request.headers.get("content-length", "0")
            if not length.isdigit() or int(length) > self.max_body:
                response = JSONResponse(
                    {
                        "errors": [
                            {
                                "message": f"request body over {self.max_body} bytes",
                                "extensions": {"code": "PAYLOAD_TOO_LARGE"},
                            }
                        ]
                    },
                    status_code=413,
                )
                await response(scope, receive, send)
                return
            try:
                principal = await request.app.state.verifier.authenticate(
                    request.headers.get("authorization")
                )
            except Unauthenticated as exc:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 4401})
                    return
                response = JSONResponse(
                    {"errors": [{"message": str(exc), "extensions": {"code": exc.code}}]},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
                await response(scope, receive, send)
                return
            scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)


async def healthz(request: Request) -> Response:
    """200 `ok` when the database answers, else 503 `unavailable`: a load balancer takes this
    gateway out of rotation while its database is away and back in once it answers again."""
    try:
        async with request.app.state.db.sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # the reason goes to the log, not to whoever asks
        if outage_of(exc) is None:
            log.exception("health check failed")
        else:
            log.warning("health check: database unavailable: %r", exc)
        return JSONResponse(
            {"status": "unavailable"}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )
    return JSONResponse({"status": "ok"})


async def settlement_export(request: Request) -> Response:
    return await settlement_http.export(request, request.scope[PRINCIPAL_KEY])


async def reconciliation_upload(request: Request) -> Response:
    return await settlement_http.upload_reconciliation(request, request.scope[PRINCIPAL_KEY])


def create_app(database_url: str | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        url = database_url or resolve_database_url()
        await ensure_schema_current(url)
        db = Database(url)
        async with db.sessions() as session:
            await identity.ensure_signing_key(session)
            await session.commit()
        app.state.db = db
        app.state.verifier = identity.TokenVerifier(db)
        try:
            yield
        finally:
            await db.dispose()

    graphql = CoalitionGraphQL(build_schema(), graphql_ide=None)
    exports = RequireToken(request_response(settlement_export))
    uploads = RequireToken(request_response(reconciliation_upload), settlement_http.MAX_UPLOAD_BYTES)
    routes = [
        Route("/graphql", RequireToken(graphql), methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route(settlement_http.EXPORT_PATH, exports, methods=["GET"]),
        Route(settlement_http.UPLOAD_PATH, uploads, methods=["POST"]),
        *identity_http.routes(),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(DatabaseOutages)])
