"""HTTP/1.1 requests written by hand on a socket, for tests about framing: a chunked body the
client decides how (and whether) to finish, which no high-level client lets a test control."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def post_chunked(
    base: str,
    path: str,
    chunks: Iterable[bytes],
    headers: dict[str, str] | None = None,
    *,
    finish: bool = True,
    timeout: float = 20,
) -> RawResponse:
    """POST `chunks` with `Transfer-Encoding: chunked` and no Content-Length, then read the
    answer. With `finish=False` the terminating chunk is never sent: the body is still open when
    the answer is read, so an answer proves the server decided without waiting for the end."""
    url = urlparse(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Transfer-Encoding: chunked"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for chunk in chunks:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if finish:
            sock.sendall(b"0\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
