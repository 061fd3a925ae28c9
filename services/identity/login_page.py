"""The member sign-in page of `GET /oauth/authorize`: server-rendered, every value escaped.

Small on purpose: one form with labelled fields, the error said in words in a live region, no
script, no third-party asset. The page may not be framed (clickjacking) nor cached, and sends no
Referer (the URL carries the authorization request).
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1b1d21}
main{max-width:24rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:.5rem;
box-shadow:0 1px 3px #0002}
h1{font-size:1.4rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin:1rem 0 .25rem}
input{box-sizing:border-box;width:100%;padding:.6rem;font:inherit;border:1px solid #8a8f98;
border-radius:.3rem}
input:focus{outline:3px solid #2b6cd4;outline-offset:1px}
button{margin-top:1.5rem;width:100%;padding:.7rem;font:inherit;font-weight:600;color:#fff;
background:#1f5fc4;border:0;border-radius:.3rem;cursor:pointer}
button:focus{outline:3px solid #0b2f6b;outline-offset:2px}
.error{background:#fdecea;color:#7a1712;padding:.75rem;border-radius:.3rem;margin:0 0 1rem}
p.note{color:#4a4f57;font-size:.9rem}
"""


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def login_page(
    *, app_name: str, hidden: dict[str, str], username: str = "", error: str | None = None, status: int = 200
) -> HTMLResponse:
    """The sign-in form; `hidden` carries the authorization request and the CSRF token."""
    fields = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in hidden.items()
    )
    alert = f'<p class="error" role="alert" id="error">{escape(error)}</p>' if error else ""
    described = ' aria-describedby="error"' if error else ""
    body = (
        f"<h1>Sign in to {escape(app_name)}</h1>{alert}"
        '<form method="post" action="/oauth/authorize">'
        f"{fields}"
        '<label for="username">Email or member number</label>'
        f'<input id="username" name="username" type="text" autocomplete="username" required'
        f' autocapitalize="none" spellcheck="false" value="{escape(username)}"{described}>'
        '<label for="password">Password</label>'
        f'<input id="password" name="password" type="password" autocomplete="current-password"'
        f" required{described}>"
        '<button type="submit">Sign in</button>'
        "</form>"
        '<p class="note">Not activated yet? Use the activation code mailed to the address you gave'
        " when you enrolled.</p>"
    )
    return HTMLResponse(_document(f"Sign in to {app_name}", body), status_code=status, headers=HEADERS)


def error_page(message: str, status: int = 400, headers: dict[str, str] | None = None) -> HTMLResponse:
    """A page that says what went wrong and redirects nowhere (RFC 6749 section 4.1.2.1: with an
    unknown client or redirect URI, the user is told, never sent on)."""
    body = f'<h1>Cannot sign in</h1><p class="error" role="alert">{escape(message)}</p>'
    return HTMLResponse(
        _document("Cannot sign in", body), status_code=status, headers={**HEADERS, **(headers or {})}
    )
