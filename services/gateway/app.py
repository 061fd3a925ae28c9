"""The Starlette application: GraphQL behind bearer tokens, the OAuth endpoints, health.

The gateway only assembles: tokens are verified by identity, rules live in the services. This
module wires routes; the GraphQL view is `view.py`, the token guard `guard.py`, the body limit
`shared/http.py`, request ids and the access log `request_log.py`, the browser IDE `ide.py`, the
member web app at /app `member_app.py`.
"""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute, request_response
from starlette.types import ASGIApp

from services.earning import cache as earning_cache
from services.earning import promotion_cache
from services.gateway import member_app, member_export
from services.gateway.availability import RETRY_AFTER_SECONDS, DatabaseOutages, outage_of
from services.gateway.guard import RequireToken, principal_of
from services.gateway.ide import GraphiQLPage
from services.gateway.request_log import RequestContext
from services.gateway.schema import build_schema
from services.gateway.view import CoalitionGraphQL
from services.identity import http as identity_http
from services.identity import service as identity
from services.ledger.balance_feed import BalanceFeed
from services.members import credentials as member_credentials
from services.members import erasure as member_erasure
from services.members import http as members_http
from services.members import propagation as member_links
from services.members import tiers as member_tiers
from services.settlement import http as settlement_http
from shared.database import Database, resolve_database_url
from shared.http import BodyLimit
from shared.listening import Listener
from shared.logs import log_python_complaints
from shared.migrate import ensure_schema_current
from shared.settings import get_settings

log = logging.getLogger("coalition.gateway")
# A GraphQL request is text; the token limit bounds what is parsed. 1 MiB holds a full
# recordPurchases batch (1,000 purchases at ~200 bytes each, ~500 with 200-character keys and
# order ids) with room to spare (docs/decisions.md, "Bulk earning").
MAX_BODY_BYTES = 1024 * 1024


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
    return await settlement_http.export(request, principal_of(request))


async def account_export(request: Request) -> Response:
    return await member_export.download(request, principal_of(request))


async def reconciliation_upload(request: Request) -> Response:
    return await settlement_http.upload_reconciliation(request, principal_of(request))


async def listen(db: Database, verifier: identity.TokenVerifier) -> tuple[Listener, BalanceFeed]:
    """This process's one LISTEN connection, every service's channel on it, started: it hears at
    once of revocations, disabled clients and rotated secrets (the verifier), of links undone and
    members erased (the member cache), of earn rules changed (the rules cache) and of balances
    moved (the live feed). Every gateway subscribes the same channels, which `applied_everywhere`
    counts on."""
    listener = Listener(db)
    await identity.subscribe_verifier(listener, verifier)
    await member_links.subscribe(listener, db)
    await member_erasure.subscribe(listener, db)
    await earning_cache.subscribe(listener, db)
    await promotion_cache.subscribe(listener, db)
    await member_tiers.subscribe(listener, db)
    feed = BalanceFeed(db, listener)
    await feed.start()
    await listener.start()
    return listener, feed


def freeze_startup_objects() -> None:
    """Moves everything alive after startup (the schema, the modules: ~140,000 objects) out of the
    garbage collector's sight. They live as long as the process, yet every full collection walked
    them all: ~100 ms with the event loop stopped, every few hundred requests, which was the
    gateway's p99 (docs/decisions.md, "Reads at the speed of the writes")."""
    gc.collect()
    gc.freeze()


def create_app(database_url: str | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Python's warnings and ignored exceptions as log records, so they come out as one JSON
        # line like everything else the server says, not as bare text on stderr; given back at
        # shutdown, where logging may already be torn down when a late one comes.
        log_python_complaints(True)
        # graphql-core abandons a sibling resolver's coroutine when another field's error bubbles
        # up (it settles them in the background, and a cancelled request drops them unstarted):
        # the answer is already an error, and the warning, with no request id, helps nobody.
        warnings.filterwarnings(
            "ignore", message=r"coroutine '.*_async_resolver' was never awaited", category=RuntimeWarning
        )
        url = database_url or resolve_database_url()
        await ensure_schema_current(url)
        db = Database(url)
        async with db.sessions() as session:
            await identity.ensure_signing_key(session)
            await session.commit()
        app.state.db = db
        app.state.verifier = identity.TokenVerifier(db)
        listener, app.state.balance_feed = await listen(db, app.state.verifier)
        freeze_startup_objects()
        try:
            yield
        finally:
            await app.state.balance_feed.stop()
            await listener.stop()
            await db.dispose()
            log_python_complaints(False)

    # Every route that reads a body has its limit outermost: a declared length over it is refused
    # before the token is even checked, and a chunked body is counted as it arrives.
    graphql: ASGIApp = BodyLimit(
        RequireToken(CoalitionGraphQL(build_schema(), graphql_ide=None)), MAX_BODY_BYTES
    )
    if get_settings().graphql_ide:  # a browser's GET gets the page; the API stays behind the token
        graphql = GraphiQLPage(graphql)
    exports = RequireToken(request_response(settlement_export))
    account_exports = RequireToken(request_response(account_export))
    uploads = BodyLimit(
        RequireToken(request_response(reconciliation_upload)), settlement_http.MAX_UPLOAD_BYTES
    )
    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),  # subscriptions: graphql-transport-ws
        Route("/healthz", healthz, methods=["GET"]),
        Route(settlement_http.EXPORT_PATH, exports, methods=["GET"]),
        Route(settlement_http.UPLOAD_PATH, uploads, methods=["POST"]),
        Route(member_export.EXPORT_PATH, account_exports, methods=["GET"]),
        *identity_http.routes(authenticate_member=member_credentials.authenticate),
        *members_http.routes(),
        *member_app.routes(),
    ]
    # Outermost the request id, so the outage answers and every log line carry it.
    middleware = [Middleware(RequestContext), Middleware(DatabaseOutages)]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
