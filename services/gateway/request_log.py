"""Every request gets an id and one access-log line.

The id comes from the client's (or its proxy's) `X-Request-Id` when that is a sensible token, else
it is generated; it is returned in the response's `X-Request-Id`, carried by every log line of the
request (`shared.logs.request_id`) and put in `extensions.requestId` of every error the request
answers with, so a partner quoting it in a support ticket leads straight to the server's lines.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.guard import PRINCIPAL_KEY
from shared.logs import request_id

HEADER = "x-request-id"
# What a proxy or client may hand us: a token, not free text (it lands in logs and headers).
_ACCEPTED = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
access_log = logging.getLogger("coalition.access")


def request_id_of(headers: Headers) -> str:
    """The caller's id when acceptable, else a fresh one (32 hex digits)."""
    given = headers.get(HEADER)
    if given is not None and _ACCEPTED.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestContext:
    """Outermost middleware: sets the request id for everything inside, adds the header to the
    answer, and logs `METHOD path status` with the time taken and the caller's client id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id_of(Headers(scope=scope))
        token = request_id.set(rid)
        started = time.perf_counter()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.accept"):
                status = message.get("status", 101)
                headers = [*message.get("headers", []), (HEADER.encode(), rid.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            principal = scope.get(PRINCIPAL_KEY)
            fields: dict[str, object] = {
                "method": scope.get("method", "WEBSOCKET"),
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            }
            if principal is not None:
                fields["client_id"] = principal.client_id
            summary = f"{fields['method']} {fields['path']} {status} {fields['duration_ms']} ms"
            if principal is not None:
                summary += f" {principal.client_id}"
            access_log.info(summary, extra={**fields, "_fields_in_message": True})
            request_id.reset(token)
