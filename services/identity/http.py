"""The OAuth endpoints: token, revocation, introspection, and the two discovery documents."""

from __future__ import annotations

import base64
import binascii
import logging
from functools import lru_cache
from urllib.parse import parse_qsl, unquote

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.identity import service, tokens
from services.identity.keys import active_signing_key, ensure_signing_key
from services.identity.models import OAuthClient
from services.identity.oauth_server import AUTH_METHODS, Preloaded, Server, build_server, issue
from shared.access import ALL_SCOPES
from shared.http import BodyLimit
from shared.settings import get_settings

log = logging.getLogger("coalition.identity")


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="coalition"'} if status == 401 else None
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _credentials(request: Request, form: dict[str, str]) -> tuple[str, str] | None:
    """Client id and secret from HTTP Basic (RFC 6749 2.3.1, form-encoded parts) or the form."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, sep, secret = raw.partition(":")
        return (unquote(client_id), unquote(secret)) if sep else None
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    return None


MAX_FORM_BYTES = 16 * 1024  # an OAuth request is a handful of short parameters


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body OAuth requests use (RFC 6749 section 3.2); nothing else is parsed.
    The routes' `BodyLimit` answers 413 before more than `MAX_FORM_BYTES` are read."""
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return {}
    return dict(pairs)


@lru_cache(maxsize=1)
def _server() -> Server:
    """One Authlib server per process: it holds configuration only, no per-request state."""
    return build_server()


async def token(request: Request) -> Response:
    """RFC 6749 section 4.4: the client-credentials grant, run by Authlib on preloaded rows."""
    form = await _form(request)
    credentials = _credentials(request, form)
    if credentials is None and request.headers.get("authorization", "").lower().startswith("basic "):
        # Authlib's own parsing raises on undecodable Basic credentials instead of refusing them.
        return _oauth_error("invalid_client", "malformed HTTP Basic credentials", 401)
    async with request.app.state.db.sessions() as session:
        client = await service.load_client(session, credentials[0]) if credentials else None
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


async def _token_request(request: Request) -> tuple[OAuthClient, str] | Response:
    """Client authentication and the `token` parameter, as revocation and introspection need."""
    form = await _form(request)
    credentials = _credentials(request, form)
    client = None
    if credentials is not None:
        async with request.app.state.db.sessions() as session:
            client = await service.authenticate_client(session, *credentials)
    if client is None:
        return _oauth_error("invalid_client", "client authentication failed", 401)
    if not form.get("token"):
        return _oauth_error("invalid_request", "the 'token' parameter is required")
    return client, form["token"]


async def revoke(request: Request) -> Response:
    """RFC 7009: 200 whether or not there was anything to revoke, so it reveals nothing."""
    checked = await _token_request(request)
    if isinstance(checked, Response):
        return checked
    client, token = checked
    async with request.app.state.db.sessions() as session:
        revocation = await service.revoke_token(session, token, caller=client)
        await session.commit()
    if revocation is not None:
        request.app.state.verifier.revoked_locally(revocation.jti, revocation.expires_at)
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


async def introspect(request: Request) -> Response:
    checked = await _token_request(request)
    if isinstance(checked, Response):
        return checked
    client, token = checked
    async with request.app.state.db.sessions() as session:
        answer = await service.introspect(session, token, caller=client)
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


async def metadata(request: Request) -> Response:
    issuer = get_settings().issuer
    return JSONResponse(
        {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/oauth/token",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "scopes_supported": sorted(ALL_SCOPES),
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
            "access_token_signing_alg_values_supported": [tokens.ALGORITHM],
        }
    )


async def jwks(request: Request) -> Response:
    async with request.app.state.db.sessions() as session:
        document = await service.jwks(session)
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})


def routes() -> list[Route]:
    form_limit = [Middleware(BodyLimit, max_bytes=MAX_FORM_BYTES)]
    return [
        Route("/oauth/token", token, methods=["POST"], middleware=form_limit),
        Route("/oauth/revoke", revoke, methods=["POST"], middleware=form_limit),
        Route("/oauth/introspect", introspect, methods=["POST"], middleware=form_limit),
        Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    ]
