"""The member account pages: ask for a code, set a password with it (activation and reset).

Server-rendered HTML without script: every value shown is escaped, every input has a label, an
error names its field next to the input (`aria-invalid`, `aria-describedby`) and in a summary
read out first (`role="alert"`). The answer to a code request is the same page, byte for byte,
whether or not the number and email matched; the mail goes out after the answer is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from html import escape
from urllib.parse import parse_qsl

from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from services.members import accounts, credentials
from shared import mail
from shared.errors import DomainError
from shared.http import BodyLimit
from shared.rate_limit import RateLimited

log = logging.getLogger("coalition.members")

ACTIVATE_PATH = "/account/activate"
CONFIRM_PATH = "/account/activate/confirm"
MAX_FORM_BYTES = 16 * 1024  # three short fields
HEADERS = {
    "Cache-Control": "no-store",
    # No script, no frames, forms post only here: a page that sets passwords gives nothing away.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5}label{display:block;margin-top:1rem;font-weight:600}"
    "input{display:block;width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}"
    "button{margin-top:1.25rem;padding:.6rem 1.2rem;font-size:1rem}"
    ".error{color:#a00000}[role=alert]{border:2px solid #a00000;padding:.5rem 1rem}"
)

Errors = Mapping[str, str]  # field -> message


def _page(title: str, body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · Coalition</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})


def _summary(errors: Errors) -> str:
    if not errors:
        return ""
    items = "".join(
        f'<li><a href="#{escape(f)}">{escape(f)}</a>: {escape(m)}</li>' for f, m in errors.items()
    )
    return f'<div role="alert"><p>Please fix:</p><ul>{items}</ul></div>'


def _input(name: str, label: str, value: str, errors: Errors, **attrs: str) -> str:
    described = ""
    note = ""
    if name in errors:
        described = f' aria-invalid="true" aria-describedby="{name}-error"'
        note = f'<span class="error" id="{name}-error">{escape(name)}: {escape(errors[name])}</span>'
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return (
        f'<label for="{name}">{escape(label)}</label>'
        f'<input id="{name}" name="{name}" value="{escape(value)}" required{extra}{described}>{note}'
    )


def _request_form(values: Mapping[str, str], errors: Errors) -> str:
    return (
        f"{_summary(errors)}<p>Enter your member number and the email you gave when you joined."
        " We mail you a code to set your password (also when you forgot it).</p>"
        f'<form method="post" action="{ACTIVATE_PATH}">'
        + _input(
            "memberNumber",
            "Member number (12 digits)",
            values.get("memberNumber", ""),
            errors,
            inputmode="numeric",
            autocomplete="username",
        )
        + _input("email", "Email", values.get("email", ""), errors, type="email", autocomplete="email")
        + '<button type="submit">Send me a code</button></form>'
        f'<p><a href="{CONFIRM_PATH}">I have a code already</a></p>'
    )


def _confirm_form(values: Mapping[str, str], errors: Errors) -> str:
    return (
        f"{_summary(errors)}"
        f'<form method="post" action="{CONFIRM_PATH}">'
        + _input(
            "memberNumber",
            "Member number (12 digits)",
            values.get("memberNumber", ""),
            errors,
            inputmode="numeric",
            autocomplete="username",
        )
        + _input(
            "code",
            "Code from the mail (6 digits)",
            "",
            errors,
            inputmode="numeric",
            autocomplete="one-time-code",
            maxlength="6",
        )
        + _input(
            "password",
            f"New password (at least {credentials.MIN_PASSWORD_LENGTH} characters,"
            " not containing your member number)",
            "",
            errors,
            type="password",
            autocomplete="new-password",
            minlength=str(credentials.MIN_PASSWORD_LENGTH),
        )
        + '<button type="submit">Set my password</button></form>'
        f'<p><a href="{ACTIVATE_PATH}">Send me a new code</a></p>'
    )


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form; anything else reads as empty fields (each then named as missing)."""
    try:
        return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return {}


def _address(request: Request) -> str:
    # uvicorn's proxy_headers puts a trusted proxy's X-Forwarded-For here.
    return request.client.host if request.client else "unknown"


def _errors(exc: DomainError) -> dict[str, str]:
    found: dict[str, str] = {}
    for error in exc.errors:
        found.setdefault(error.field or "form", error.message)
    return found


def _too_many(exc: RateLimited, form: str) -> HTMLResponse:
    body = (
        f'<div role="alert"><p>Too many attempts. Please try again in {exc.retry_after} seconds.</p>'
        f"</div>{form}"
    )
    return _page("Too many attempts", body, 429, {"Retry-After": str(exc.retry_after)})


async def activate_form(request: Request) -> Response:
    return _page("Activate your account", _request_form({}, {}))


async def confirm_form(request: Request) -> Response:
    return _page("Set your password", _confirm_form({}, {}))


async def _send(code_mail: accounts.CodeMail) -> None:
    """After the answer: a failed delivery is logged (one line, no recipient), never shown."""
    try:
        await mail.send(code_mail.mail())
    except mail.MailError as exc:
        log.error("activation mail not sent: %s", exc)


async def activate(request: Request) -> Response:
    form = await _form(request)
    values = {"memberNumber": form.get("memberNumber", ""), "email": form.get("email", "")}
    try:
        pending = await accounts.request_code(
            request.app.state.db, values["memberNumber"], values["email"], _address(request)
        )
    except DomainError as exc:
        return _page("Activate your account", _request_form(values, _errors(exc)), 400)
    except RateLimited as exc:
        return _too_many(exc, _request_form(values, {}))
    body = (
        "<p>If the member number and email match an account, we have mailed a 6-digit code to"
        f" that email. It is valid for {int(accounts.CODE_TTL.total_seconds() // 60)} minutes.</p>"
        + _confirm_form({"memberNumber": values["memberNumber"].strip()}, {})
    )
    task = BackgroundTask(_send, pending) if pending is not None else None
    response = _page("Check your mail", body)
    response.background = task
    return response


async def confirm(request: Request) -> Response:
    form = await _form(request)
    values = {"memberNumber": form.get("memberNumber", "")}
    try:
        await accounts.confirm(
            request.app.state.db,
            values["memberNumber"],
            form.get("code", ""),
            form.get("password", ""),
            _address(request),
        )
    except DomainError as exc:
        return _page("Set your password", _confirm_form(values, _errors(exc)), 400)
    except RateLimited as exc:
        return _too_many(exc, _confirm_form(values, {}))
    return _page(
        "Your password is set",
        "<p>You can now log in to your member app with your member number or your email and"
        ' this password.</p><p><a href="/app">Open the member app</a></p>',
    )


def routes() -> list[Route]:
    form_limit = [Middleware(BodyLimit, max_bytes=MAX_FORM_BYTES)]
    return [
        Route(ACTIVATE_PATH, activate_form, methods=["GET"]),
        Route(ACTIVATE_PATH, activate, methods=["POST"], middleware=form_limit),
        Route(CONFIRM_PATH, confirm_form, methods=["GET"]),
        Route(CONFIRM_PATH, confirm, methods=["POST"], middleware=form_limit),
    ]
