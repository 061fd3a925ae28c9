"""The mail transport: SMTP_URL's forms, plain text + HTML over real SMTP, `.eml` files without."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from shared import mail
from shared.database import Database
from shared.settings import get_settings
from tests.factories import enroll, make_partner, unique
from tests.members.conftest import ClientFactory, Inbox, code_of


def test_smtp_urls_say_host_port_credentials_and_tls() -> None:
    plain = mail.parse_smtp_url("smtp://mail.example.com")
    assert (plain.host, plain.port) == ("mail.example.com", 25)
    assert not plain.starttls and not plain.implicit_tls
    upgraded = mail.parse_smtp_url("smtp://ops%40example.com:p%40ss@mail.example.com:587?starttls=1")
    assert (upgraded.username, upgraded.password, upgraded.port) == ("ops@example.com", "p@ss", 587)
    assert upgraded.starttls and "p@ss" not in upgraded.describe() and "STARTTLS" in upgraded.describe()
    implicit = mail.parse_smtp_url("smtps://mail.example.com")
    assert implicit.implicit_tls and implicit.port == 465
    for bad, why in [
        ("http://mail.example.com", "smtp://"),
        ("smtp://", "no host"),
        ("smtp://h:port", "port"),
        ("smtp://h?tls=1", "unknown parameters: tls"),
        ("smtps://h?starttls=1", "TLS already"),
    ]:
        with pytest.raises(ValueError, match=why):
            mail.parse_smtp_url(bad)


async def test_a_message_goes_out_over_smtp_as_text_and_html(smtp: Inbox) -> None:
    where = await mail.send(
        mail.Mail(to="ana@example.com", subject="Hello", text="Plain words", html="<p>Rich <b>words</b></p>")
    )
    assert where.startswith("SMTP 127.0.0.1:")
    [message] = smtp.to("ana@example.com")
    assert message["From"] == get_settings().mail_from and message["Subject"] == "Hello"
    assert message.get_body(("plain",)).get_content().strip() == "Plain words"
    assert "<b>words</b>" in message.get_body(("html",)).get_content()


async def test_an_unreachable_server_is_a_mail_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.e2e.conftest import free_port

    monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    try:
        with pytest.raises(mail.MailError, match="unreachable"):
            await mail.send(mail.Mail(to="a@example.com", subject="s", text="t", html="<p>t</p>"))
    finally:
        monkeypatch.delenv("SMTP_URL")
        get_settings.cache_clear()


async def test_without_smtp_url_the_code_is_an_eml_file_and_a_log_line(
    db: Database,
    client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("SMTP_URL", raising=False)
    monkeypatch.setenv("MAIL_DIR", str(tmp_path / "mail"))
    get_settings.cache_clear()
    try:
        assert "unset" in mail.describe_transport() and str(tmp_path / "mail") in mail.describe_transport()
        partner = await make_partner(db)
        email = f"{unique('m')}@example.com"
        member = await enroll(db, partner, email=email)
        with caplog.at_level(logging.INFO, logger="coalition.mail"):
            async with client() as c:
                asked = await c.post(
                    "/account/activate", data={"memberNumber": member.member_number, "email": email}
                )
                assert asked.status_code == 200
                [path] = (tmp_path / "mail").glob("*.eml")
                message = message_from_bytes(path.read_bytes(), policy=policy.default)
                assert message["To"] == email
                done = await c.post(
                    "/account/activate/confirm",
                    data={
                        "memberNumber": member.member_number,
                        "code": code_of(message),  # type: ignore[arg-type]
                        "password": "correct horse battery",
                    },
                )
        assert done.status_code == 200
        assert any(str(path) in r.getMessage() for r in caplog.records)
        assert all(email not in r.getMessage() for r in caplog.records)
    finally:
        monkeypatch.delenv("MAIL_DIR")
        get_settings.cache_clear()


async def test_serve_says_where_mail_goes_and_a_real_process_writes_it(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    import httpx

    from tests.e2e.conftest import run_cli, start_gateway

    malformed = run_cli(database_url, "serve", "--port", "1", SMTP_URL="smtp://host:port")
    assert malformed.returncode == 2 and "port is not a number" in malformed.stderr
    partner = await make_partner(db)
    email = f"{unique('m')}@example.com"
    member = await enroll(db, partner, email=email)
    log = tmp_path / "serve.log"
    server = start_gateway(database_url, log, MAIL_DIR=str(tmp_path / "mail"), SMTP_URL="")
    try:
        said = f"SMTP_URL is unset: mail is written as .eml files under {tmp_path / 'mail'}/"
        assert said in server.output()
        form = {"memberNumber": member.member_number, "email": email}
        async with httpx.AsyncClient(base_url=server.base) as c:
            asked = await c.post("/account/activate", data=form)
        assert asked.status_code == 200
        await _eventually(lambda: bool(list((tmp_path / "mail").glob("*.eml"))))  # mailed after answering
        [path] = (tmp_path / "mail").glob("*.eml")
        assert code_of(message_from_bytes(path.read_bytes(), policy=policy.default))  # type: ignore[arg-type]
    finally:
        server.stop()


async def _eventually(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.05)


async def test_smtp_url_credentials_log_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """User and password from the URL (percent-decoded) reach the server's AUTH."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from tests.e2e.conftest import free_port

    seen: list[tuple[bytes, bytes]] = []

    def authenticator(server: object, session: object, envelope: object, mech: str, data: object) -> Any:
        assert isinstance(data, LoginPassword)
        seen.append((data.login, data.password))
        return AuthResult(success=data.login == b"ops@example.com" and data.password == b"p@ss word")

    inbox = Inbox()
    # Plain-text AUTH only because this server is on loopback for the test; production asks TLS.
    controller = Controller(
        inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        message = mail.Mail(to="ana@example.com", subject="s", text="t", html="<p>t</p>")
        for url, delivered in [
            (f"smtp://ops%40example.com:p%40ss%20word@127.0.0.1:{controller.port}", True),
            (f"smtp://ops%40example.com:wrong@127.0.0.1:{controller.port}", False),
        ]:
            monkeypatch.setenv("SMTP_URL", url)
            get_settings.cache_clear()
            if delivered:
                await mail.send(message)
            else:
                with pytest.raises(mail.MailError):
                    await mail.send(message)
    finally:
        controller.stop()
        monkeypatch.delenv("SMTP_URL")
        get_settings.cache_clear()
    assert seen[0] == (b"ops@example.com", b"p@ss word") and len(inbox.messages) == 1
