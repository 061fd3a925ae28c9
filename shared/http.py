"""What every HTTP route shares: the GraphQL-shaped error answer, and a request body limit that
holds whatever the framing.

Every route that reads a body is wrapped in `BodyLimit`: a declared `Content-Length` over the
limit is refused before anything runs (no authentication, no read); a body without one (HTTP/1.1
`Transfer-Encoding: chunked`) is counted as it arrives and refused the moment it passes the
limit, so no handler ever holds more than the limit in memory. Both answer 413 with the same
GraphQL-shaped error, `extensions.code` `PAYLOAD_TOO_LARGE`.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logs import request_id


def error_body(code: str, message: str) -> dict[str, list[dict[str, object]]]:
    """The shape clients already parse for GraphQL errors, used for HTTP-level refusals too; with
    the request's id, as every GraphQL error has it."""
    extensions: dict[str, object] = {"code": code}
    rid = request_id.get()
    if rid is not None:
        extensions["requestId"] = rid
    return {"errors": [{"message": message, "extensions": extensions}]}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


class BodyTooLarge(Exception):
    """Raised from `receive` when the body passes the limit; `BodyLimit` turns it into the 413.
    Handlers let it through: nothing in them can do better than stop."""


class BodyLimit:
    """ASGI wrapper refusing request bodies over `max_bytes` (see the module docstring).

    Invariant: the wrapped app never receives more than `max_bytes` of body. When the limit is
    passed after the app began its own answer (it never does here: every handler reads its body
    first), the exception propagates and the server drops the connection."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def too_large(self) -> JSONResponse:
        return error_response(413, "PAYLOAD_TOO_LARGE", f"request body over {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                response = error_response(400, "BAD_REQUEST", "Content-Length must be a number of bytes")
                await response(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self.too_large()(scope, receive, send)
                return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self.too_large()(scope, receive, send)
