"""The OAuth endpoints: token, revocation, introspection, the two discovery documents, and the
member sign-in (`authorize_http`, `member_grants_http`)."""

from __future__ import annotations

import base64
import binascii
import logging
from functools import lru_cache
from urllib.parse import unquote_plus

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.identity import propagation, service, tokens
from services.identity.authorize_http import AuthenticateMember, authorize_page, sign_in
from services.identity.keys import active_signing_key, ensure_signing_key
from services.identity.member_grants_http import (
    MEMBER_GRANTS,
    is_public_revocation,
    member_revoke,
    member_token,
)
from services.identity.models import OAuthClient
from services.identity.oauth_forms import MAX_FORM_BYTES, NO_STORE, _form, _oauth_error
from services.identity.oauth_server import AUTH_METHODS, Preloaded, Server, build_server, issue
from shared.access import ALL_SCOPES
from shared.http import BodyLimit
from shared.settings import get_settings

log = logging.getLogger("coalition.identity")


def client_authentication_failed() -> JSONResponse:
    """The one answer to an unknown client, a disabled one and a wrong secret, byte for byte, so
    the endpoints cannot be asked which client ids exist."""
    return _oauth_error("invalid_client", "client authentication failed", 401)


def _basic(header: str) -> tuple[str, str] | None:
    """Client id and secret of an HTTP Basic header (RFC 6749 2.3.1: form-encoded, then base64)."""
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = raw.partition(":")
    return (unquote_plus(client_id), unquote_plus(secret)) if sep and client_id and secret else None


def _credentials(request: Request, form: dict[str, str]) -> tuple[str, str] | JSONResponse:
    """Client id and secret from exactly one method: HTTP Basic, or the form's client_id and
    client_secret. Both at once is refused (RFC 6749 section 2.3: "The client MUST NOT use more
    than one authentication method in each request"), even when both name the same client: a
    server that tried one method after the other would let a wrong secret fall through to the
    next. Naming in the form the client Basic authenticates is allowed (RFC 6749 section 3.2.1)."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        credentials = _basic(header)
        if credentials is None:
            return _oauth_error("invalid_client", "malformed HTTP Basic credentials", 401)
        if "client_secret" in form or form.get("client_id", credentials[0]) != credentials[0]:
            return _oauth_error(
                "invalid_request",
                "use one client authentication method per request: HTTP Basic, or client_id and"
                " client_secret in the form, not both",
            )
        return credentials
    if form.get("client_id") and form.get("client_secret"):
        return form["client_id"], form["client_secret"]
    return client_authentication_failed()


@lru_cache(maxsize=1)
def _server() -> Server:
    """One Authlib server per process: it holds configuration only, no per-request state."""
    return build_server()


async def _authenticated(
    request: Request, form: dict[str, str] | None = None
) -> tuple[OAuthClient, dict[str, str]] | Response:
    """The authenticated client and the form, or the error to answer. Every endpoint
    authenticates clients here, through `service.authenticate_client`: Authlib's own client
    authentication tells an unknown client from a wrong secret in its error description."""
    if form is None:
        read = await _form(request)
        if isinstance(read, Response):
            return read
        form = read
    credentials = _credentials(request, form)
    if isinstance(credentials, Response):
        return credentials
    async with request.app.state.db.sessions() as session:
        client = await service.authenticate_client(session, *credentials)
    if client is None:
        return client_authentication_failed()
    return client, form


async def token(request: Request) -> Response:
    """RFC 6749 section 4.4: the client-credentials grant, run by Authlib on preloaded rows; the
    member apps' grants (authorization code, refresh token) are `member_grants_http`'s."""
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if form.get("grant_type") in MEMBER_GRANTS:
        return await member_token(request, form)
    authenticated = await _authenticated(request, form)
    if isinstance(authenticated, Response):
        return authenticated
    client, form = authenticated
    async with request.app.state.db.sessions() as session:
        key = await active_signing_key(session)
        if key is None:  # a database nobody has served from yet
            await ensure_signing_key(session)
            await session.commit()
            key = await active_signing_key(session)
    try:
        return issue(_server(), request, form, Preloaded(client=client, signing_key=key))
    except Exception:  # a bug, not the client's fault: the log gets the trace, the client JSON
        log.exception("token endpoint failed")
        return _oauth_error("server_error", "the token could not be issued; try again later", 500)


async def _token_request(
    request: Request, form: dict[str, str] | None = None
) -> tuple[OAuthClient, str] | Response:
    """Client authentication and the `token` parameter, as revocation and introspection need."""
    authenticated = await _authenticated(request, form)
    if isinstance(authenticated, Response):
        return authenticated
    client, form = authenticated
    if not form.get("token"):
        return _oauth_error("invalid_request", "the 'token' parameter is required")
    return client, form["token"]


async def revoke(request: Request) -> Response:
    """RFC 7009: 200 whether or not there was anything to revoke, so it reveals nothing. A client
    id without a secret is a member app revoking its own tokens (`member_grants_http`)."""
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if is_public_revocation(request, form):
        return await member_revoke(request, form)
    checked = await _token_request(request, form)
    if isinstance(checked, Response):
        return checked
    client, token = checked
    async with request.app.state.db.sessions() as session:
        revocation = await service.revoke_token(session, token, caller=client)
        await session.commit()
    if revocation is not None:
        request.app.state.verifier.revoked_locally(revocation.jti, revocation.expires_at)
        await propagation.applied_everywhere(request.app.state.db, revocation.notice)
    return Response(status_code=200, headers=NO_STORE)


async def introspect(request: Request) -> Response:
    checked = await _token_request(request)
    if isinstance(checked, Response):
        return checked
    client, token = checked
    async with request.app.state.db.sessions() as session:
        answer = await service.introspect(session, token, caller=client)
    return JSONResponse(answer, headers=NO_STORE)


async def metadata(request: Request) -> Response:
    issuer = get_settings().issuer
    return JSONResponse(
        {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/oauth/token",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "scopes_supported": sorted(ALL_SCOPES),
            "token_endpoint_auth_methods_supported": [*AUTH_METHODS, "none"],
            "revocation_endpoint_auth_methods_supported": [*AUTH_METHODS, "none"],  # member apps
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
            "access_token_signing_alg_values_supported": [tokens.ALGORITHM],
        }
    )


async def jwks(request: Request) -> Response:
    async with request.app.state.db.sessions() as session:
        document = await service.jwks(session)
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})


def routes(authenticate_member: AuthenticateMember | None = None) -> list[Route]:
    """Identity's routes. `authenticate_member(db, username, password) -> member id | None` comes
    from members (which identity may not import); without it there is no member sign-in."""
    form_limit = [Middleware(BodyLimit, max_bytes=MAX_FORM_BYTES)]
    signin = (
        [
            Route("/oauth/authorize", authorize_page, methods=["GET"]),
            Route("/oauth/authorize", sign_in(authenticate_member), methods=["POST"], middleware=form_limit),
        ]
        if authenticate_member is not None
        else []
    )
    return [
        *signin,
        Route("/oauth/token", token, methods=["POST"], middleware=form_limit),
        Route("/oauth/revoke", revoke, methods=["POST"], middleware=form_limit),
        Route("/oauth/introspect", introspect, methods=["POST"], middleware=form_limit),
        Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    ]
