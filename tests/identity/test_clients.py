"""Clients: creation rules, hashed secrets, authentication."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select, text, update

from services.identity import service as identity
from services.identity.models import OAuthClient
from shared.database import Database
from shared.errors import DomainError


async def _create(db: Database, **kwargs: object) -> identity.ClientCredentials:
    async with db.sessions() as session:
        creds = await identity.create_client(session, **kwargs)  # type: ignore[arg-type]
        await session.commit()
    return creds


async def test_a_new_client_gets_a_readable_id_a_256_bit_secret_and_sorted_scopes(db):
    creds = await _create(db, name="ops", scopes=["members:read", "admin:partners", "members:read"])
    assert creds.client_id.startswith("cl_") and len(creds.client_id) >= 20
    assert len(creds.client_secret) >= 43  # token_urlsafe(32): 256 bits
    assert creds.scopes == ["admin:partners", "members:read"]
    other = await _create(db, name="ops", scopes=["members:read"])
    assert other.client_id != creds.client_id and other.client_secret != creds.client_secret


async def test_the_secret_is_stored_only_as_its_sha256(db):
    creds = await _create(db, name="hashed", scopes=["admin:settlement"])
    async with db.sessions() as session:
        row_json = await session.scalar(
            text("SELECT row_to_json(c)::text FROM oauth_clients c WHERE client_id = :id"),
            {"id": creds.client_id},
        )
        stored = await session.scalar(
            select(OAuthClient.secret_hash).where(OAuthClient.client_id == creds.client_id)
        )
    assert creds.client_secret not in row_json
    assert stored == hashlib.sha256(creds.client_secret.encode()).hexdigest()


@pytest.mark.parametrize(
    ("kwargs", "field", "code"),
    [
        ({"name": "x", "scopes": ["points:earn", "points:fly"]}, "scopes", "UNKNOWN_SCOPE"),
        ({"name": "x", "scopes": []}, "scopes", "REQUIRED"),
        ({"name": "x", "scopes": ["member"]}, "scopes", "INVALID"),
        ({"name": "  ", "scopes": ["members:read"]}, "name", "REQUIRED"),
        ({"name": "x" * 201, "scopes": ["members:read"]}, "name", "TOO_LONG"),
    ],
)
async def test_invalid_clients_are_refused_naming_the_field(db, kwargs, field, code):
    async with db.sessions() as session:
        before = await session.scalar(select(func.count()).select_from(OAuthClient))
        with pytest.raises(DomainError) as raised:
            await identity.create_client(session, **kwargs)
        await session.rollback()
        after = await session.scalar(select(func.count()).select_from(OAuthClient))
    assert (raised.value.errors[0].field, raised.value.errors[0].code) == (field, code)
    assert after == before


async def test_partner_credentials_cannot_carry_admin_scopes(db, partner):
    async with db.sessions() as session:
        with pytest.raises(DomainError) as raised:
            await identity.create_client(
                session, name="x", scopes=["admin:partners", "points:earn"], partner_id=partner.id
            )
    assert raised.value.errors[0].field == "scopes"


async def test_authenticate_client_accepts_only_the_right_secret_of_an_enabled_client(db):
    creds = await _create(db, name="auth", scopes=["admin:partners"])
    async with db.sessions() as session:
        found = await identity.authenticate_client(session, creds.client_id, creds.client_secret)
        assert found is not None and found.client_id == creds.client_id
        assert await identity.authenticate_client(session, creds.client_id, creds.client_secret + "x") is None
        assert await identity.authenticate_client(session, "cl_nobody", creds.client_secret) is None
        await session.execute(
            update(OAuthClient).where(OAuthClient.client_id == creds.client_id).values(disabled_at=func.now())
        )
        await session.commit()
        assert await identity.authenticate_client(session, creds.client_id, creds.client_secret) is None
