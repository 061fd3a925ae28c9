"""GraphiQL for a developer's browser, when `GRAPHQL_IDE` is on (`make run` turns it on; it is off
by default, so a production gateway serves no page).

The page itself is public, like any static file: it holds no data. Everything it asks of the API,
the schema's introspection included, goes to `/graphql` with the bearer token pasted into its
token field, through the same guard as any other client.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.datastructures import Headers, QueryParams
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Receive, Scope, Send

PAGE = Path(__file__).with_name("static") / "graphiql.html"
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",  # a page that holds a token is not framed by another site
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@cache
def page() -> str:
    return PAGE.read_text(encoding="utf-8")


def wants_page(scope: Scope) -> bool:
    """A browser navigating to /graphql: GET, HTML accepted, no GraphQL `query` parameter (a GET
    with one is an API call, whatever the browser accepts)."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    if "query" in QueryParams(scope.get("query_string", b"").decode("latin-1")):
        return False
    return "text/html" in Headers(scope=scope).get("accept", "")


class GraphiQLPage:
    """In front of the token guard: serves the IDE page to a browser, passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if wants_page(scope):
            await HTMLResponse(page(), headers=PAGE_HEADERS)(scope, receive, send)
            return
        await self.app(scope, receive, send)
