"""Signing keys: creation, rotation without breaking live tokens, publication window, encryption."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from services.identity import keys
from services.identity import service as identity
from services.identity.models import SigningKey
from services.identity.verifier import TokenVerifier
from shared import clock
from shared.settings import get_settings
from tests.identity.conftest import clock_at, jwt_part


async def _rotate(db) -> str:
    async with db.sessions() as session:
        kid = await identity.rotate_signing_key(session)
        await session.commit()
    return kid


async def _published_kids(identity_app) -> list[str]:
    return [k["kid"] for k in (await identity_app.http.get("/.well-known/jwks.json")).json()["keys"]]


async def test_ensure_signing_key_keeps_exactly_one_active_key(db):
    async with db.sessions() as session:
        first = await identity.ensure_signing_key(session)
        await session.commit()
    async with db.sessions() as session:
        assert await identity.ensure_signing_key(session) == first
        await session.commit()
        active = await session.scalar(
            select(func.count()).select_from(SigningKey).where(SigningKey.retired_at.is_(None))
        )
    assert active == 1


async def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(identity_app, partner, db):
    warm = TokenVerifier(db, revocation_cache_seconds=3600, key_reload_interval=0)
    old_token = await identity_app.token(partner.client_id, partner.client_secret)
    old_kid = jwt_part(old_token, 0)["kid"]
    await warm.authenticate(f"Bearer {old_token}")

    new_kid = await _rotate(db)
    new_token = await identity_app.token(partner.client_id, partner.client_secret)
    assert new_kid != old_kid and jwt_part(new_token, 0)["kid"] == new_kid

    published = await _published_kids(identity_app)
    assert published[0] == new_kid and old_kid in published
    async with db.sessions() as session:
        active = list(await session.scalars(select(SigningKey.kid).where(SigningKey.retired_at.is_(None))))
    assert active == [new_kid]

    # A process that knew the old key learns the new one; a fresh process loads both.
    fresh = TokenVerifier(db, revocation_cache_seconds=3600, key_reload_interval=0)
    for verifier in (warm, fresh):
        for token in (old_token, new_token):
            assert (await verifier.authenticate(f"Bearer {token}")).client_id == partner.client_id


async def test_a_retired_key_leaves_the_jwks_once_its_tokens_have_expired(identity_app, db):
    old_kid = await _rotate(db)
    await _rotate(db)
    assert old_kid in await _published_kids(identity_app)
    ttl = get_settings().token_ttl_seconds
    with clock_at(clock.now() + timedelta(seconds=ttl)):
        assert old_kid in await _published_kids(identity_app)  # still within the clock-skew margin
    with clock_at(clock.now() + timedelta(seconds=ttl + keys.CLOCK_SKEW_SECONDS + 5)):
        assert old_kid not in await _published_kids(identity_app)


async def test_private_keys_are_encrypted_at_rest(db):
    kid = await _rotate(db)
    async with db.sessions() as session:
        row = await session.get(SigningKey, kid)
    assert "d" not in row.public_jwk and row.public_jwk["kid"] == kid
    assert '"d"' not in row.private_jwk_encrypted
    private = json.loads(keys.fernet().decrypt(row.private_jwk_encrypted.encode()))
    assert private["kid"] == kid and private["x"] == row.public_jwk["x"] and "d" in private
