"""The member web app at `/app`: static files (`static/app/`), and `/app/config.json` telling the
page which OAuth client it is.

The app is plain ES modules with its few dependencies vendored (`static/app/vendor/`), so serving
it needs no Node build. It logs in with the authorization code + PKCE at this gateway's own
`/oauth/authorize` and `/oauth/token`, and talks to `/graphql` (HTTP and graphql-transport-ws).

Every response under `/app` carries a Content-Security-Policy that allows this origin only: no
inline script or style, no other host, no framing. A page that holds a member's tokens runs
nothing but its own files. The redirect URI to register for the app is `<origin>/app/`: the
page itself takes `?code=…&state=…` back.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.settings import get_settings

STATIC = Path(__file__).with_name("static") / "app"
# A module script needs a JavaScript type (the browser refuses anything else under nosniff);
# Python knows `.mjs` only from 3.12 or from the system's mime.types.
mimetypes.add_type("text/javascript", ".mjs")
PATH = "/app"

# 'self' covers the same host's ws:// and wss:// for connect-src (CSP Level 3), which the live
# balance needs; nothing else is reachable. frame-ancestors stops clickjacking of the Unlink and
# spend-code buttons; form-action and base-uri close the two ways markup could send data away.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The callback URL carries the authorization code: no Referer ever repeats it.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    # Revalidate every load (StaticFiles answers 304 on a matching ETag), so a deploy's new files
    # are used at once and never mixed with cached old modules.
    "Cache-Control": "no-cache",
}


class WithHeaders:
    """Adds `HEADERS` to every HTTP response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in HEADERS.items()
                    if name.lower().encode("latin-1") not in names
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def config(request: Request) -> Response:
    """What the page needs to log in: its client id (null when this gateway has none configured,
    and the page says so). The endpoints are this origin's, so they are not repeated here."""
    return JSONResponse(
        {"clientId": get_settings().member_app_client_id, "scope": "member"},
        headers={**HEADERS, "Cache-Control": "no-store"},
    )


def routes() -> list[BaseRoute]:
    """`/app/config.json` first (the mount would otherwise look for a file of that name), then
    the files, `index.html` for `/app/`."""
    files = WithHeaders(StaticFiles(directory=STATIC, html=True))
    return [Route(f"{PATH}/config.json", config, methods=["GET"]), Mount(PATH, app=files)]
