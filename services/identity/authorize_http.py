"""`GET/POST /oauth/authorize`: members sign in to a member app (RFC 6749 section 4.1, PKCE per
RFC 7636 with S256 only).

The GET checks the request and shows the sign-in page; the form posts the request back in hidden
fields with the username, the password and a CSRF token. Errors follow section 4.1.2.1: with an
unknown client or a redirect URI it did not register, the page says so and sends the browser
nowhere (an open redirector otherwise); any other fault of the request goes back to the app's
redirect URI as `error` and `state`.

The CSRF token is an HMAC (a server secret derived from the key-encryption key) over a random
nonce kept in a cookie of this page, a timestamp and the authorization request: a form posted
from elsewhere has no cookie, and one whose fields were changed does not match its token.

Identity may not import members (it comes first): the gateway passes the function that checks a
member's username and password in (`routes(authenticate_member=…)`).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from hashlib import sha256
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services.identity import keys, member_tokens
from services.identity.login_page import HEADERS, error_page, login_page
from services.identity.member_apps import load_member_app
from services.identity.models import OAuthClient
from services.identity.oauth_forms import _form
from shared.access import MEMBER_SCOPE
from shared.database import Database
from shared.rate_limit import SlidingWindow
from shared.settings import get_settings

AuthenticateMember = Callable[[Database, str, str], Awaitable[int | None]]

CSRF_COOKIE = "coalition_signin"
CSRF_MAX_AGE_SECONDS = 30 * 60
REQUEST_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
MAX_STATE_LENGTH = 1000
WRONG_CREDENTIALS = "Wrong username or password."


@dataclass(frozen=True)
class AuthorizationRequest:
    client: OAuthClient
    redirect_uri: str
    state: str | None
    code_challenge: str
    scope: str

    def hidden(self) -> dict[str, str]:
        fields = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        if self.state is not None:
            fields["state"] = self.state
        return fields


def redirect_to(redirect_uri: str, params: dict[str, str | None]) -> RedirectResponse:
    """302 to the registered URI with `params` added to its query (section 3.1.2: its own query
    is kept)."""
    parts = urlsplit(redirect_uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return RedirectResponse(
        urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")), status_code=302, headers=HEADERS
    )


async def _checked(db: Database, params: dict[str, str]) -> AuthorizationRequest | Response:
    """The authorization request, or its error: a page for the client and redirect URI, a
    redirect for the rest."""
    async with db.sessions() as session:
        client = await load_member_app(session, params.get("client_id", ""))
    if client is None:
        return error_page("This app is not registered here (unknown client_id). Nothing was sent to it.")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in client.redirect_uris:
        return error_page("This app did not register that redirect_uri, so you cannot sign in through it.")
    state = params.get("state") or None
    if state is not None and len(state) > MAX_STATE_LENGTH:
        return error_page("The request's state is too long.")

    def fail(error: str, description: str) -> Response:
        return redirect_to(
            redirect_uri,
            {"error": error, "error_description": description, "state": state, "iss": get_settings().issuer},
        )

    if params.get("response_type") != "code":
        return fail("unsupported_response_type", "only response_type=code is supported")
    scope = (params.get("scope") or MEMBER_SCOPE).strip()
    if set(scope.split()) != {MEMBER_SCOPE}:
        return fail("invalid_scope", f"a member app may only ask for the scope '{MEMBER_SCOPE}'")
    challenge = params.get("code_challenge", "")
    if not challenge:
        return fail("invalid_request", "code_challenge is required (PKCE, RFC 7636)")
    if params.get("code_challenge_method") != "S256":
        return fail("invalid_request", "code_challenge_method must be S256 (plain is not supported)")
    if not member_tokens.PKCE_VALUE.match(challenge):
        return fail("invalid_request", "code_challenge must be 43 to 128 characters of base64url")
    return AuthorizationRequest(client, redirect_uri, state, challenge, MEMBER_SCOPE)


@lru_cache(maxsize=1)
def _csrf_secret() -> bytes:
    return keys.derived_secret("signin-csrf")


def _csrf_mac(nonce: str, issued: int, request: AuthorizationRequest) -> str:
    bound = "\x1f".join([nonce, str(issued), *request.hidden().values(), request.state or ""])
    mac = hmac.new(_csrf_secret(), bound.encode(), sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_token(nonce: str, request: AuthorizationRequest) -> str:
    issued = int(time.time())
    return f"{issued}.{_csrf_mac(nonce, issued, request)}"


def csrf_valid(nonce: str | None, token: str, request: AuthorizationRequest) -> bool:
    if not nonce or not token:
        return False
    issued_text, _, mac = token.partition(".")
    if not issued_text.isdigit() or not 0 <= time.time() - int(issued_text) <= CSRF_MAX_AGE_SECONDS:
        return False
    return hmac.compare_digest(mac, _csrf_mac(nonce, int(issued_text), request))


def _page(request: Request, authorization: AuthorizationRequest, **kwargs: object) -> Response:
    """The sign-in form with a fresh CSRF token, keeping the browser's nonce if it has one."""
    nonce = request.cookies.get(CSRF_COOKIE) or ""
    if len(nonce) != 43:
        nonce = secrets.token_urlsafe(32)
    hidden = {**authorization.hidden(), "csrf_token": csrf_token(nonce, authorization)}
    response = login_page(app_name=authorization.client.name, hidden=hidden, **kwargs)  # type: ignore[arg-type]
    response.set_cookie(
        CSRF_COOKIE,
        nonce,
        max_age=CSRF_MAX_AGE_SECONDS,
        path="/oauth/authorize",
        httponly=True,
        samesite="lax",
        secure=get_settings().issuer.startswith("https://"),
    )
    return response


def _limits() -> tuple[SlidingWindow, SlidingWindow]:
    settings = get_settings()
    window = timedelta(seconds=settings.login_failure_window_seconds)
    return (
        SlidingWindow("member-signin-username", settings.login_failures_per_username, window),
        SlidingWindow("member-signin-address", settings.login_failures_per_address, window),
    )


async def authorize_page(request: Request) -> Response:
    checked = await _checked(request.app.state.db, dict(request.query_params))
    if isinstance(checked, Response):
        return checked
    return _page(request, checked)


def sign_in(authenticate_member: AuthenticateMember) -> Callable[[Request], Awaitable[Response]]:
    """The POST handler, with the members' credential check handed in."""

    async def handle(request: Request) -> Response:
        db: Database = request.app.state.db
        form = await _form(request)
        if isinstance(form, Response):
            return error_page("The sign-in form was malformed. Go back to the app and start again.")
        checked = await _checked(db, {k: form[k] for k in REQUEST_FIELDS if k in form})
        if isinstance(checked, Response):
            return checked
        if not csrf_valid(request.cookies.get(CSRF_COOKIE), form.get("csrf_token", ""), checked):
            return error_page(
                "This sign-in form expired or was not sent by this page. Go back to the app and start again."
            )
        username = form.get("username", "").strip()
        password = form.get("password", "")
        by_username, by_address = _limits()
        keys_ = (username.lower()[:320], request.client.host if request.client else "unknown")
        for limit, key in zip((by_username, by_address), keys_, strict=True):
            wait = await limit.retry_after(db, key)
            if wait is not None:
                minutes = max(1, round(wait / 60))
                return _page(
                    request,
                    checked,
                    username=username,
                    error=f"Too many failed sign-ins. Try again in {minutes} minute(s).",
                    status=429,
                )
        member_id = await authenticate_member(db, username, password) if username and password else None
        if member_id is None:
            for limit, key in zip((by_username, by_address), keys_, strict=True):
                await limit.hit(db, key)
            return _page(request, checked, username=username, error=WRONG_CREDENTIALS, status=400)
        async with db.sessions() as session, session.begin():
            code = await member_tokens.create_code(
                session,
                client_id=checked.client.client_id,
                redirect_uri=checked.redirect_uri,
                member_id=member_id,
                code_challenge=checked.code_challenge,
                scope=checked.scope,
            )
        return redirect_to(
            checked.redirect_uri, {"code": code, "state": checked.state, "iss": get_settings().issuer}
        )

    return handle
