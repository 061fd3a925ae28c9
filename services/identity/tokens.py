"""The access token format (RFC 9068 JWTs): minting and checking claims, no database, no caches.

Claims: `iss` (the issuer URL), `sub` and `client_id` (the OAuth client; client-credentials
tokens have no resource owner, RFC 9068 section 2.2), `aud` (`audience()`: the issuer URL +
"/graphql", the one resource server), `exp`, `iat`, `jti` (what revocation records), `scope`
(space separated), and `partner_id` for a partner's credentials. The header carries
`typ: at+jwt`, so an ID token or any other JWT signed by the same key is never accepted here.

Times come from `shared.clock`, not `time.time()`: a gateway run with a clock offset (drills) or
a test that moves time must mint and check tokens on the same clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from shared import clock
from shared.access import Principal
from shared.errors import Unauthenticated
from shared.settings import get_settings

# ES256 rather than EdDSA: with joserfc on this machine a token verifies in ~89 µs with ES256
# against ~128 µs with Ed25519 (OpenSSL's P-256 is the more optimised curve), signs as fast,
# and joserfc flags "EdDSA" as deprecated by RFC 9864. Every JOSE library reads ES256.
ALGORITHM = "ES256"
TOKEN_TYPE = "at+jwt"
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope")

KeyLookup = Callable[[str], Awaitable[ECKey | None]]


def audience() -> str:
    """The `aud` of every access token: the GraphQL endpoint, the only resource server."""
    return f"{get_settings().issuer}/graphql"


def access_token_claims(
    *, client_id: str, scope: str, partner_id: int | None, issuer: str | None = None
) -> dict[str, Any]:
    """The claims of a new token, stamped with the application clock."""
    settings = get_settings()
    issued_at = int(clock.now().timestamp())
    claims: dict[str, Any] = {
        "iss": issuer or settings.issuer,
        "sub": client_id,
        "aud": audience(),
        "exp": issued_at + settings.token_ttl_seconds,
        "iat": issued_at,
        "jti": secrets.token_urlsafe(16),
        "client_id": client_id,
        "scope": scope,
    }
    if partner_id is not None:
        claims["partner_id"] = partner_id
    return claims


def sign(claims: dict[str, Any], key: ECKey) -> str:
    header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[ALGORITHM])


def principal_from(claims: dict[str, Any]) -> Principal:
    partner_id = claims.get("partner_id")
    return Principal(
        client_id=str(claims["client_id"]),
        scopes=frozenset(str(claims["scope"]).split()),
        partner_id=int(partner_id) if partner_id is not None else None,
        token_id=str(claims["jti"]),
    )


async def decode(token: str, key_for: KeyLookup, *, check_expiry: bool = True) -> dict[str, Any]:
    """Header, signature, issuer, audience, required claims and (optionally) lifetime, or
    Unauthenticated saying which. `key_for(kid)` finds the public key (a cache or the database)."""
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, UnicodeError) as exc:
        raise Unauthenticated("the access token is malformed: not a signed JWT") from exc
    if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
        raise Unauthenticated("the token is not an access token of this server (wrong 'alg' or 'typ')")
    kid = header.get("kid")
    key = await key_for(kid) if isinstance(kid, str) else None
    if key is None:
        raise Unauthenticated("the access token was signed by a key this server does not know")
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM]).claims
    except (JoseError, ValueError) as exc:
        raise Unauthenticated("the access token's signature is invalid") from exc
    missing = [name for name in REQUIRED_CLAIMS if name not in claims]
    if missing:
        raise Unauthenticated(f"the access token lacks the claims: {', '.join(missing)}")
    if claims["iss"] != get_settings().issuer:
        raise Unauthenticated(f"the access token was issued by another server ({claims['iss']!r})")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if audience() not in audiences:
        raise Unauthenticated("the access token is meant for another audience")
    if not isinstance(claims["exp"], int | float):
        raise Unauthenticated("the access token's 'exp' claim is not a number")
    if check_expiry and claims["exp"] <= clock.now().timestamp():
        raise Unauthenticated("the access token has expired: ask the token endpoint for a new one")
    return claims
