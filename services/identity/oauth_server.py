"""Authlib's authorization server, adapted to Starlette and to an async database.

Authlib's server classes are synchronous and framework-agnostic. The adapter reads the form and
loads the client and the signing key asynchronously first, then runs Authlib's synchronous code
against those preloaded objects (carried in a context variable, so concurrent requests never see
each other's).
"""

from __future__ import annotations

import hmac
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.errors import InsecureTransportError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.jwk import ECKey
from starlette.requests import Request
from starlette.responses import JSONResponse

from services.identity import tokens
from services.identity.clients import hash_secret
from services.identity.models import OAuthClient
from services.identity.service import grant_scope
from shared.access import ALL_SCOPES
from shared.errors import DomainError
from shared.settings import get_settings

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


@dataclass
class Preloaded:
    client: OAuthClient | None
    signing_key: ECKey | None


_preloaded: ContextVar[Preloaded] = ContextVar("coalition_oauth_preloaded")


class Client(ClientMixin):
    def __init__(self, row: OAuthClient):
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """Any subset of the client's scopes; none asked means all of them; more is refused."""
        try:
            return grant_scope(self.row.allowed_scopes, scope)
        except DomainError as exc:
            raise InvalidScopeError(description=str(exc)) from exc

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(self.row.secret_hash, hash_secret(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class CredentialsGrant(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS


class TokenGenerator(JWTBearerTokenGenerator):
    """Authlib's RFC 9068 generator, with the claims built by `tokens` on the application clock
    (Authlib stamps `time.time()`, which a clock-offset drill or a test moving time would
    contradict) and signed with the preloaded active key."""

    def access_token_generator(self, client: Client, grant_type: str, user: Any, scope: str) -> str:
        key = _preloaded.get().signing_key
        if key is None:
            raise RuntimeError("no active signing key: the gateway creates one at start-up")
        claims = tokens.access_token_claims(
            client_id=client.row.client_id,
            scope=scope,
            partner_id=client.row.partner_id,
            secret_version=client.row.secret_version,
        )
        return tokens.sign(claims, key)


class StarletteRequest(OAuth2Request):
    """A Starlette request as Authlib sees it, its form already read.

    The URI is the configured issuer's, not the one the socket saw: behind a TLS-terminating load
    balancer the gateway hears plain http, and Authlib refuses any non-https URI other than
    localhost. What counts is the address clients use, which the issuer names.
    """

    def __init__(self, request: Request, form: dict[str, str]):
        super().__init__(request.method, get_settings().issuer + request.url.path, headers=request.headers)
        self._form = form
        self._args = dict(request.query_params)
        self.payload = BasicOAuth2Payload(form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class Server(AuthorizationServer):
    def query_client(self, client_id: str) -> Client | None:
        row = _preloaded.get().client
        return Client(row) if row is not None and row.client_id == client_id else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Access tokens are self-contained JWTs; revocation records their ids when asked."""

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=dict(headers or {}))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


def build_server() -> Server:
    server = Server(scopes_supported=sorted(ALL_SCOPES))
    server.register_token_generator(
        "default",
        TokenGenerator(
            issuer=get_settings().issuer,
            alg=tokens.ALGORITHM,
            expires_generator=lambda client, grant_type: get_settings().token_ttl_seconds,
        ),
    )
    server.register_grant(CredentialsGrant)
    return server


def issue(server: Server, request: Request, form: dict[str, str], preloaded: Preloaded) -> JSONResponse:
    """Run Authlib's token endpoint on a request whose client and key were loaded beforehand."""
    token = _preloaded.set(preloaded)
    try:
        response = server.create_token_response(StarletteRequest(request, form))
    except InsecureTransportError:
        response = JSONResponse(
            {
                "error": "invalid_request",
                "error_description": "OAuth 2 requires https: set OAUTH_ISSUER to this server's https URL",
            },
            status_code=400,
        )
    finally:
        _preloaded.reset(token)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
