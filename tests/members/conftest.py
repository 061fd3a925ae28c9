"""A real SMTP server (aiosmtpd on a free port) and the gateway app for the account pages.

The account pages rate-limit per client address, so each test talks to the app from an address
of its own (`client(address)`), as different people's browsers would.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from starlette.applications import Starlette

from services.gateway.app import create_app
from shared.settings import get_settings
from tests.e2e.conftest import free_port

_addresses = itertools.count(1)


class Inbox:
    """aiosmtpd's handler: every message it accepts, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def code_of(message: EmailMessage) -> str:
    text = message.get_body(("plain",))
    assert text is not None
    found = re.findall(r"\b(\d{6})\b", text.get_content())
    assert len(set(found)) == 1, found
    return found[0]


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{controller.port}")
    get_settings.cache_clear()
    try:
        yield inbox
    finally:
        controller.stop()
        monkeypatch.delenv("SMTP_URL")
        get_settings.cache_clear()


@pytest.fixture(scope="module")
async def accounts_app(database_url: str) -> AsyncIterator[Starlette]:
    app = create_app(database_url)
    async with app.router.lifespan_context(app):
        yield app


ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def client(accounts_app: Starlette) -> ClientFactory:
    """`async with client() as c:` a browser at a fresh address (or the one given)."""

    def make(address: str | None = None) -> httpx.AsyncClient:
        n = next(_addresses)
        transport = httpx.ASGITransport(
            app=accounts_app, client=(address or f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}", 40000)
        )
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")

    return make
