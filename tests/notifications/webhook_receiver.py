"""A partner's webhook receiver, for real: a Starlette app served by uvicorn on a free port, in the
test's event loop. It records every request (headers and raw body) and answers what the test
says: `statuses` is consumed one answer per request (then 200), `delay` holds an answer back."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.perf_counter)  # when it arrived (bench/webhooks.py)

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["coalition-event-id"]


@dataclass
class Receiver:
    url: str = ""
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def of_member(self, member_number: str) -> list[Received]:
        return [r for r in self.received if r.json["data"].get("memberNumber") == member_number]

    async def wait_for(self, count: int) -> None:
        """Until `count` requests came (the caller bounds it with asyncio.timeout)."""
        while len(self.received) < count:
            self.arrived.clear()
            await self.arrived.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def serve_receiver(path: str = "/hooks") -> AsyncIterator[Receiver]:
    receiver = Receiver()

    async def hook(request: Request) -> Response:
        receiver.received.append(
            Received({k.lower(): v for k, v in request.headers.items()}, await request.body())
        )
        receiver.arrived.set()
        status = receiver.statuses.pop(0) if receiver.statuses else 200
        if receiver.delay:
            await asyncio.sleep(receiver.delay)
        return Response(status_code=status)

    port = _free_port()
    app = Starlette(routes=[Route(path, hook, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn's Server has a flag, no event to await
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}{path}"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
