"""TokenVerifier: what it accepts, what it refuses and why, and that it stays off the database."""

from __future__ import annotations

import asyncio

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from services.identity import keys, tokens
from services.identity.verifier import TokenVerifier
from shared import clock
from shared.errors import Unauthenticated
from shared.settings import get_settings
from tests.identity.conftest import ago, b64, clock_at, count_statements, jwt_part


def _verifier(db, **kwargs) -> TokenVerifier:
    return TokenVerifier(db, **{"revocation_cache_seconds": 3600, "key_reload_interval": 0, **kwargs})


async def _refused(verifier: TokenVerifier, header: str | None) -> str:
    with pytest.raises(Unauthenticated) as raised:
        await verifier.authenticate(header)
    assert raised.value.extensions == {"code": "UNAUTHENTICATED"}
    return str(raised.value)


async def _signed(db, claims: dict, header: dict | None = None) -> str:
    """A token signed by the real active key, with whatever claims or header a test needs."""
    async with db.sessions() as session:
        key = await keys.active_signing_key(session)
    return jwt.encode(header or {"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, claims, key)


def _claims(partner, **changes) -> dict:
    claims = tokens.access_token_claims(
        client_id=partner.client_id, scope="points:earn", partner_id=partner.id
    )
    return {**claims, **changes}


async def test_a_valid_token_becomes_the_principal(identity_app, partner, db):
    token = await identity_app.token(partner.client_id, partner.client_secret, "points:earn members:read")
    principal = await _verifier(db).authenticate(f"Bearer {token}")
    assert principal.client_id == partner.client_id
    assert principal.partner_id == partner.id
    assert principal.scopes == frozenset({"points:earn", "members:read"})
    assert principal.token_id == jwt_part(token, 1)["jti"]
    assert principal.member_id is None and not principal.is_admin


async def test_admin_tokens_make_admin_principals(identity_app, admin, db):
    token = await identity_app.token(admin.client_id, admin.client_secret)
    principal = await _verifier(db).authenticate(f"bearer {token}")  # the scheme is case-insensitive
    assert principal.is_admin and principal.partner_id is None


async def test_missing_and_malformed_headers_are_refused_with_clear_messages(db):
    verifier = _verifier(db)
    assert "missing access token" in await _refused(verifier, None)
    assert "missing access token" in await _refused(verifier, "  ")
    assert "must be 'Bearer <token>'" in await _refused(verifier, "Basic dXNlcjpwYXNz")
    assert "must be 'Bearer <token>'" in await _refused(verifier, "Bearer ")
    assert "malformed" in await _refused(verifier, "Bearer not-a-jwt")
    assert "malformed" in await _refused(verifier, "Bearer a.b.c")


async def test_tampered_and_foreign_signatures_are_refused(identity_app, partner, db):
    token = await identity_app.token(partner.client_id, partner.client_secret, "points:earn")
    header, _, signature = token.split(".")
    widened = jwt_part(token, 1) | {"scope": "points:earn admin:partners"}
    verifier = _verifier(db)
    assert "signature is invalid" in await _refused(verifier, f"Bearer {header}.{b64(widened)}.{signature}")
    # An attacker's own key, claiming the kid of the real one.
    forged_key = ECKey.generate_key("P-256")
    forged = jwt.encode(jwt_part(token, 0), widened, forged_key)
    assert "signature is invalid" in await _refused(verifier, f"Bearer {forged}")
    unsigned = f"{b64({'alg': 'none', 'typ': 'at+jwt'})}.{b64(widened)}."
    assert "not an access token of this server" in await _refused(verifier, f"Bearer {unsigned}")


async def test_unknown_keys_wrong_issuer_audience_type_or_claims_are_refused(partner, db):
    verifier = _verifier(db)
    stranger = ECKey.generate_key("P-256", parameters={"kid": "k-nobody"})
    unknown_kid = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "k-nobody"}, _claims(partner), stranger)
    assert "does not know" in await _refused(verifier, f"Bearer {unknown_kid}")
    wrong_issuer = await _signed(db, _claims(partner, iss="https://elsewhere.example"))
    assert "issued by another server" in await _refused(verifier, f"Bearer {wrong_issuer}")
    wrong_audience = await _signed(db, _claims(partner, aud="https://elsewhere.example/api"))
    assert "another audience" in await _refused(verifier, f"Bearer {wrong_audience}")
    no_jti = _claims(partner)
    del no_jti["jti"]
    assert "lacks the claims: jti" in await _refused(verifier, f"Bearer {await _signed(db, no_jti)}")
    async with db.sessions() as session:
        kid = (await keys.active_signing_key(session)).kid
    id_token = await _signed(db, _claims(partner), {"alg": "ES256", "typ": "JWT", "kid": kid})
    assert "not an access token" in await _refused(verifier, f"Bearer {id_token}")
    # The control: the same claims, correctly typed and issued, pass.
    assert (
        await verifier.authenticate(f"Bearer {await _signed(db, _claims(partner))}")
    ).partner_id == partner.id


async def test_a_token_issued_a_lifetime_ago_has_expired(identity_app, partner, db):
    ttl = get_settings().token_ttl_seconds
    with clock_at(ago(ttl + 5)):
        stale = await identity_app.token(partner.client_id, partner.client_secret)
    with clock_at(ago(ttl - 30)):
        fresh = await identity_app.token(partner.client_id, partner.client_secret)
    verifier = _verifier(db)
    assert "expired" in await _refused(verifier, f"Bearer {stale}")
    assert (await verifier.authenticate(f"Bearer {fresh}")).client_id == partner.client_id
    # A token verified (and cached) while valid is refused once its time is up.
    with clock_at(ago(-31)):
        assert "expired" in await _refused(verifier, f"Bearer {fresh}")


async def test_verification_does_not_query_the_database_once_warm(identity_app, partner, db):
    first = await identity_app.token(partner.client_id, partner.client_secret)
    second = await identity_app.token(partner.client_id, partner.client_secret, "points:earn")
    verifier = _verifier(db)
    await verifier.authenticate(f"Bearer {first}")  # loads keys and revocations
    with count_statements(db) as statements:
        for _ in range(50):
            await verifier.authenticate(f"Bearer {first}")
        await verifier.authenticate(f"Bearer {second}")  # new token, known key
    assert statements == []


async def test_revocations_and_client_changes_are_re_read_only_after_the_cache_period(
    identity_app, partner, db
):
    token = await identity_app.token(partner.client_id, partner.client_secret)
    verifier = _verifier(db, revocation_cache_seconds=0.2)
    await verifier.authenticate(f"Bearer {token}")
    with count_statements(db) as statements:
        for _ in range(20):
            await verifier.authenticate(f"Bearer {token}")
        assert statements == []
        await asyncio.sleep(0.25)
        await verifier.authenticate(f"Bearer {token}")
    assert len(statements) == 2
    assert "revoked_tokens" in statements[0] and "oauth_clients" in statements[1]


async def test_made_up_kids_share_one_key_reload(partner, db):
    verifier = _verifier(db, key_reload_interval=0.2)
    await verifier.authenticate(f"Bearer {await _signed(db, _claims(partner))}")  # warm
    stranger = ECKey.generate_key("P-256")
    forged = [
        jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": f"k-made-up-{i}"}, _claims(partner), stranger)
        for i in range(30)
    ]
    with count_statements(db) as statements:
        results = await asyncio.wait_for(
            asyncio.gather(*(verifier.authenticate(f"Bearer {t}") for t in forged), return_exceptions=True),
            timeout=2,
        )
    assert all(isinstance(r, Unauthenticated) for r in results)
    assert len(statements) == 1 and "signing_keys" in statements[0]


async def test_a_local_revocation_survives_a_re_read_that_does_not_know_it_yet(partner, db):
    """The race: a re-read that began before this process committed its revocation."""
    token = await _signed(db, _claims(partner))
    verifier = _verifier(db, revocation_cache_seconds=0)  # re-reads on every request
    await verifier.authenticate(f"Bearer {token}")
    claims = jwt_part(token, 1)
    verifier.revoked_locally(claims["jti"], claims["exp"])  # not in the database
    assert "revoked" in await _refused(verifier, f"Bearer {token}")
    assert "revoked" in await _refused(verifier, f"Bearer {token}")


async def test_a_lifetime_longer_than_the_configured_maximum_is_refused(partner, db):
    ttl = get_settings().token_ttl_seconds
    now = int(clock.now().timestamp())
    verifier = _verifier(db)
    too_long = await _signed(db, _claims(partner, iat=now, exp=now + ttl + tokens.CLOCK_SKEW_SECONDS + 1))
    message = await _refused(verifier, f"Bearer {too_long}")
    assert "lifetime" in message and str(ttl) in message
    # Within the skew allowance it passes: an issuer a few seconds off is not an attacker.
    within = await _signed(db, _claims(partner, iat=now, exp=now + ttl + tokens.CLOCK_SKEW_SECONDS))
    assert (await verifier.authenticate(f"Bearer {within}")).partner_id == partner.id


@pytest.mark.parametrize("claim", ["iat", "nbf"])
async def test_tokens_issued_or_valid_only_in_the_future_are_refused(partner, db, claim):
    now = int(clock.now().timestamp())
    verifier = _verifier(db)

    def starting(at: int) -> dict:
        # The lifetime stays the configured one, so only the future instant can be what is wrong.
        return {"iat": at, "exp": at + 600} if claim == "iat" else {"nbf": at, "exp": at + 600}

    future = await _signed(db, _claims(partner, **starting(now + tokens.CLOCK_SKEW_SECONDS + 30)))
    message = await _refused(verifier, f"Bearer {future}")
    assert f"'{claim}'" in message and "future" in message
    # A few seconds ahead (clock skew between issuer and verifier) is accepted.
    fine = await _signed(db, _claims(partner, **starting(now + 5)))
    assert (await verifier.authenticate(f"Bearer {fine}")).partner_id == partner.id


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("partner_id", "abc"),
        ("partner_id", "12"),
        ("partner_id", 1.5),
        ("partner_id", True),
        ("partner_id", {"id": 1}),
        ("partner_id", [1]),
        ("iat", "yesterday"),
        ("iat", True),
        ("exp", True),
        ("nbf", "now"),
        ("scope", ["points:earn"]),
        ("client_id", 42),
        ("jti", {"id": "x"}),
        ("aud", "AUDIENCE_AS_OBJECT"),
        ("secret_version", "1"),
        ("secret_version", 0.5),
    ],
)
async def test_claims_of_the_wrong_type_are_401_naming_the_claim(partner, db, claim, value):
    if value == "AUDIENCE_AS_OBJECT":  # `in` would find the audience among an object's keys
        value = {tokens.audience(): True}
    token = await _signed(db, _claims(partner, **{claim: value}))
    message = await _refused(_verifier(db), f"Bearer {token}")
    assert f"'{claim}'" in message, message
