"""A small keep-alive HTTP/1.1 client on asyncio streams.

httpx costs more CPU per request than the server we are measuring, and on a 2-core machine the
client shares cores with it; this client does the minimum (pre-built headers, Content-Length
bodies) so the figures are the server's.
"""

from __future__ import annotations

import asyncio


class Connection:
    def __init__(self, host: str, port: int, authorization: str):
        self.host, self.port = host, port
        self.head = (
            f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {authorization}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        assert self.writer is not None
        self.writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        return await self._response()

    async def get(self, path: str) -> tuple[int, bytes]:
        """A GET without a body (a health check); the same keep-alive connection."""
        assert self.writer is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        return await self._response()

    async def _response(self) -> tuple[int, bytes]:
        assert self.reader is not None
        status_line = await self.reader.readline()
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
