"""The access token format (RFC 9068 JWTs): minting and checking claims, no database, no caches.

Claims: `iss` (the issuer URL), `sub` and `client_id` (the OAuth client; client-credentials
tokens have no resource owner, RFC 9068 section 2.2), `aud` (`audience()`: the issuer URL +
"/graphql", the one resource server), `exp`, `iat`, `jti` (what revocation records), `scope`
(space separated), `secret_version` (the client's secret generation when the token was issued:
rotating the secret refuses every token issued under an older one), and `partner_id` for a
partner's credentials. The header carries `typ: at+jwt`, so an ID token or any other JWT signed by
the same key is never accepted here.

Only this server signs with its keys, yet a claim it did not expect must still be a 401, never a
500: every claim is type-checked, and a token must not claim to live longer than the configured
lifetime nor to start in the future (CLOCK_SKEW_SECONDS of leeway for clocks a little apart), so
a token minted under a misconfiguration or by a process with a wrong clock does not outlive its
time.

Times come from `shared.clock`, not `time.time()`: a gateway run with a clock offset (drills) or
a test that moves time must mint and check tokens on the same clock.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from shared import clock
from shared.access import MEMBER_SCOPE, Principal
from shared.errors import Unauthenticated
from shared.ids import from_global_id, to_global_id
from shared.settings import get_settings

# ES256 rather than EdDSA: with joserfc on this machine a token verifies in ~89 µs with ES256
# against ~128 µs with Ed25519 (OpenSSL's P-256 is the more optimised curve), signs as fast,
# and joserfc flags "EdDSA" as deprecated by RFC 9864. Every JOSE library reads ES256.
ALGORITHM = "ES256"
TOKEN_TYPE = "at+jwt"
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope")
STRING_CLAIMS = ("iss", "sub", "jti", "client_id", "scope")
# How far apart the clocks of the processes that sign and check tokens may be: a token may say it
# was issued this far in the future, or live this much longer than TOKEN_TTL_SECONDS.
CLOCK_SKEW_SECONDS = 60

KeyLookup = Callable[[str], Awaitable[ECKey | None]]


def audience() -> str:
    """The `aud` of every access token: the GraphQL endpoint, the only resource server."""
    return f"{get_settings().issuer}/graphql"


def access_token_claims(
    *,
    client_id: str,
    scope: str,
    partner_id: int | None,
    secret_version: int = 0,
    issuer: str | None = None,
    member_id: int | None = None,
    not_before_second: int | None = None,
) -> dict[str, Any]:
    """The claims of a new token, stamped with the application clock. A member's token (scope
    `member`) names the member as `sub`, by global ID (RFC 9068 section 2.2: the resource owner).
    `not_before_second`: the earliest whole second `iat` may say (a member's token issued in the
    second of a revocation mark, which refuses that whole second, says the next one instead)."""
    settings = get_settings()
    issued_at = int(clock.now().timestamp())
    if not_before_second is not None:
        issued_at = max(issued_at, not_before_second)
    claims: dict[str, Any] = {
        "iss": issuer or settings.issuer,
        "sub": client_id if member_id is None else to_global_id("Member", member_id),
        "aud": audience(),
        "exp": issued_at + settings.token_ttl_seconds,
        "iat": issued_at,
        "jti": secrets.token_urlsafe(16),
        "client_id": client_id,
        "scope": scope,
        "secret_version": secret_version,
    }
    if partner_id is not None:
        claims["partner_id"] = partner_id
    return claims


def sign(claims: dict[str, Any], key: ECKey) -> str:
    header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[ALGORITHM])


def principal_from(claims: dict[str, Any]) -> Principal:
    """The caller a token names; `claims` passed `decode`, so their types are known. A token
    whose `sub` is a member's global ID acts for that member and, whatever else it claims, only
    with the scope `member`."""
    member = from_global_id(claims["sub"], "Member")
    if member is not None:
        return Principal(
            client_id=claims["client_id"],
            scopes=frozenset({MEMBER_SCOPE}) & frozenset(claims["scope"].split()),
            member_id=member[1],
            token_id=claims["jti"],
        )
    return Principal(
        client_id=claims["client_id"],
        scopes=frozenset(claims["scope"].split()) - {MEMBER_SCOPE},
        partner_id=claims.get("partner_id"),
        token_id=claims["jti"],
    )


def secret_version(claims: dict[str, Any]) -> int:
    """The client secret generation a token was issued under (0: issued before secrets rotated)."""
    return claims.get("secret_version", 0)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_instant(value: Any) -> bool:
    """A NumericDate (RFC 7519 section 2): seconds since the epoch, finite, not a boolean."""
    return _is_integer(value) or (isinstance(value, float) and math.isfinite(value))


def _check_types(claims: dict[str, Any]) -> None:
    for name in STRING_CLAIMS:
        if not isinstance(claims[name], str):
            raise Unauthenticated(f"the access token's '{name}' claim is not a string")
    aud = claims["aud"]
    if not (isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud))):
        raise Unauthenticated("the access token's 'aud' claim is not a string or a list of strings")
    for name in ("exp", "iat", "nbf"):
        if name in claims and not _is_instant(claims[name]):
            raise Unauthenticated(f"the access token's '{name}' claim is not a number of seconds")
    for name in ("partner_id", "secret_version"):
        if claims.get(name) is not None and not _is_integer(claims[name]):
            raise Unauthenticated(f"the access token's '{name}' claim is not an integer")


def _check_times(claims: dict[str, Any], *, check_expiry: bool) -> None:
    """Lifetime and start; expiry unless the caller wants expired tokens too (revocation)."""
    now = clock.now().timestamp()
    ttl = get_settings().token_ttl_seconds
    if claims["exp"] - claims["iat"] > ttl + CLOCK_SKEW_SECONDS:
        raise Unauthenticated(
            f"the access token's lifetime ('exp' - 'iat') exceeds the {ttl} seconds this server issues"
        )
    for name in ("iat", "nbf"):
        if name in claims and claims[name] > now + CLOCK_SKEW_SECONDS:
            raise Unauthenticated(f"the access token's '{name}' claim lies in the future")
    if check_expiry and claims["exp"] <= now:
        raise Unauthenticated("the access token has expired: ask the token endpoint for a new one")


async def decode(token: str, key_for: KeyLookup, *, check_expiry: bool = True) -> dict[str, Any]:
    """Header, signature, required claims and their types, issuer, audience, lifetime, start and
    (optionally) expiry, or Unauthenticated saying which. `key_for(kid)` finds the public key (a
    cache or the database)."""
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
    _check_types(claims)
    if claims["iss"] != get_settings().issuer:
        raise Unauthenticated(f"the access token was issued by another server ({claims['iss']!r})")
    audiences = aud if isinstance(aud := claims["aud"], list) else [aud]
    if audience() not in audiences:
        raise Unauthenticated("the access token is meant for another audience")
    _check_times(claims, check_expiry=check_expiry)
    return claims
