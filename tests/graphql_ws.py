"""A small graphql-transport-ws client for tests and benchmarks (the protocol:
github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md): connection_init / connection_ack,
subscribe / next / error / complete, ping / pong, over the `websockets` package."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

PROTOCOL = "graphql-transport-ws"


class Closed(Exception):
    """The server closed the socket; `code` and `reason` are its close frame's."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


class GraphQLSocket:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def receive(self, seconds: float = 5.0) -> dict[str, Any]:
        """The next message other than a ping (answered), or Closed."""
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), seconds)
            except ConnectionClosed as exc:
                rcvd = exc.rcvd
                raise Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from exc
            message = json.loads(raw)
            if message.get("type") == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            return message

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        return await self.receive()

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op_id = str(next(self._ids))
        payload = {"query": query, "variables": variables or {}}
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
        return op_id

    async def complete(self, op_id: str) -> None:
        await self.ws.send(json.dumps({"id": op_id, "type": "complete"}))

    async def closed(self, seconds: float = 10.0) -> Closed:
        """Waits for the server to close the socket; what it closed with."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError("the server did not close the socket")
            try:
                await self.receive(left)
            except Closed as closed:
                return closed
            except TimeoutError as exc:
                raise AssertionError("the server did not close the socket") from exc


@asynccontextmanager
async def open_socket(url: str, authorization: str | None = None) -> AsyncIterator[GraphQLSocket]:
    """A socket on `url` (ws://…/graphql), with an Authorization header on the upgrade if given."""
    headers = {"Authorization": authorization} if authorization else None
    async with connect(url, subprotocols=[PROTOCOL], additional_headers=headers, open_timeout=10) as ws:
        yield GraphQLSocket(ws)


@asynccontextmanager
async def subscribed(
    url: str,
    token: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    in_header: bool = False,
) -> AsyncIterator[tuple[GraphQLSocket, str]]:
    """An acknowledged socket with one subscription started (token in connection_init by default)."""
    bearer = f"Bearer {token}"
    async with open_socket(url, bearer if in_header else None) as socket:
        ack = await socket.init(None if in_header else {"Authorization": bearer})
        assert ack["type"] == "connection_ack", ack
        op_id = await socket.subscribe(query, variables)
        yield socket, op_id
