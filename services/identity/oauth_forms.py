"""What every OAuth endpoint reads and answers alike: the urlencoded form and RFC 6749 errors."""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    """An RFC 6749 section 5.2 error; never cached, like every answer of these endpoints."""
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="coalition"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


MAX_FORM_BYTES = 16 * 1024  # an OAuth request is a handful of short parameters


async def _form(request: Request) -> dict[str, str] | JSONResponse:
    """The urlencoded body OAuth requests use (RFC 6749 section 3.2); nothing else is parsed.
    The routes' `BodyLimit` answers 413 before more than `MAX_FORM_BYTES` are read. A parameter
    sent twice is refused (section 3.2: "MUST NOT be included more than once"): which of the two
    counts is exactly what a client and a proxy could disagree on."""
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return {}
    form = dict(pairs)
    if len(form) != len(pairs):
        repeated = sorted(name for name, n in Counter(name for name, _ in pairs).items() if n > 1)
        return _oauth_error("invalid_request", f"parameters sent more than once: {', '.join(repeated)}")
    return form
