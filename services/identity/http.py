"""The OAuth endpoints: token, revocation, introspection, and the two discovery documents."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.identity import service
from services.identity.keys import active_signing_key
from services.identity.models import OAuthClient
from services.identity.oauth_server import AUTH_METHODS, Preloaded, build_server, issue
from shared.access import ALL_SCOPES
from shared.settings import get_settings

_server = None


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


MAX_FORM_BYTES = 16 * 1024


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body OAuth requests use (RFC 6749 section 3.2); nothing else is parsed."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return {}
    return dict(pairs)


async def token(request: Request) -> Response:
    global _server
    if _server is None:
        _server = build_server()
    form = await _form(request)
    credentials = _credentials(request, form)
    async with request.app.state.db.sessions() as session:
        client = await service.load_client(session, credentials[0]) if credentials else None
        key = await active_signing_key(session)
    return issue(_server, request, form, Preloaded(client=client, signing_key=key))


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
    checked = await _token_request(request)
    if isinstance(checked, Response):
        return checked
    client, token = checked
    async with request.app.state.db.sessions() as session:
        await service.revoke_token(session, request.app.state.verifier, client, token)
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


async def introspect(request: Request) -> Response:
    checked = await _token_request(request)
    if isinstance(checked, Response):
        return checked
    client, token = checked
    answer = await service.introspect(request.app.state.verifier, client, token)
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
            "access_token_signing_alg_values_supported": ["ES256"],
        }
    )


async def jwks(request: Request) -> Response:
    async with request.app.state.db.sessions() as session:
        document = await service.jwks(session)
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})


def routes() -> list[Route]:
    return [
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/revoke", revoke, methods=["POST"]),
        Route("/oauth/introspect", introspect, methods=["POST"]),
        Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    ]
