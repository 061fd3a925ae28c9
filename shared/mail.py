"""Outgoing mail: one message, plain text and HTML, sent over SMTP or written to a file.

`SMTP_URL` says where mail goes:

- `smtp://[user:password@]host[:port]` — plain SMTP (port 25 by default). No TLS unless asked:
  add `?starttls=1` to upgrade with STARTTLS (refused if the server does not offer it).
- `smtps://[user:password@]host[:port]` — implicit TLS from the first byte (port 465 by default).

User and password are percent-decoded (a `@` in a password is `%40`). With no `SMTP_URL` (a
developer's machine) each message is written as an `.eml` file under `MAIL_DIR` (by default
`<data_dir>/mail/`, i.e. `.coalition/mail/`), and a log line says which file: open it in any
mail client, or read its text part with `cat`. `MAIL_FROM` is the sender. A message that cannot
be delivered raises `MailError`: the caller decides whether a person waits for it.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from shared import clock
from shared.settings import Settings, get_settings

log = logging.getLogger("coalition.mail")
SMTP_TIMEOUT_SECONDS = 15.0


class MailError(Exception):
    """The message could not be handed to the SMTP server (or written to its file)."""


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool

    def describe(self) -> str:
        """Where mail goes, for the log: never the password."""
        security = "implicit TLS" if self.implicit_tls else "STARTTLS" if self.starttls else "no TLS"
        who = f"{self.username}@" if self.username else ""
        return f"SMTP {who}{self.host}:{self.port} ({security})"


def parse_smtp_url(url: str) -> SmtpTarget:
    """`SMTP_URL` as a target; ValueError saying what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"SMTP_URL must start with smtp:// or smtps://, got {parts.scheme or 'none'}://")
    if not parts.hostname:
        raise ValueError("SMTP_URL names no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"SMTP_URL's port is not a number: {exc}") from exc
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"starttls"}
    if unknown:
        raise ValueError(f"SMTP_URL has unknown parameters: {', '.join(sorted(unknown))}")
    starttls = query.get("starttls", "0").lower() in ("1", "true", "yes", "on")
    implicit = parts.scheme == "smtps"
    if implicit and starttls:
        raise ValueError("SMTP_URL: smtps:// is TLS already; starttls=1 is for smtp://")
    return SmtpTarget(
        host=parts.hostname,
        port=port or (465 if implicit else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit,
        starttls=starttls,
    )


def describe_transport(settings: Settings | None = None) -> str:
    """One line saying where mail goes; start-up prints it. ValueError for a malformed URL."""
    settings = settings or get_settings()
    if settings.smtp_url:
        return f"mail goes through {parse_smtp_url(settings.smtp_url).describe()}"
    return f"SMTP_URL is unset: mail is written as .eml files under {settings.mail_dir}/"


def build_message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(clock.now().timestamp(), localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip(">") or None)
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


async def send(mail: Mail, settings: Settings | None = None) -> str:
    """Delivers `mail`; returns where it went (the SMTP server, or the file written)."""
    settings = settings or get_settings()
    message = build_message(mail, settings.mail_from)
    if settings.smtp_url:
        return await _send_smtp(message, parse_smtp_url(settings.smtp_url))
    return _write_eml(message, settings.mail_dir)


async def _send_smtp(message: EmailMessage, target: SmtpTarget) -> str:
    import aiosmtplib

    try:
        await aiosmtplib.send(
            message,
            hostname=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.implicit_tls,
            start_tls=target.starttls,
            timeout=SMTP_TIMEOUT_SECONDS,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailError(f"{target.describe()} refused or unreachable: {exc}") from exc
    return target.describe()


def _write_eml(message: EmailMessage, directory: Path) -> str:
    stamp = clock.now().strftime("%Y%m%dT%H%M%S")
    path = directory / f"{stamp}-{secrets.token_hex(4)}.eml"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(message))
    except OSError as exc:
        raise MailError(f"could not write {path}: {exc}") from exc
    # The recipient stays out of the log (personal data); the file holds it.
    log.info("mail written to %s (SMTP_URL is unset)", path)
    return str(path)
