"""Member passwords (argon2id) and login checks, and what a member's token carries."""

from __future__ import annotations

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import select

from services.identity import tokens
from services.identity.keys import published_keys
from services.members import credentials
from services.members.models import Member
from shared.access import MEMBER_SCOPE
from shared.database import Database
from shared.errors import DomainError
from tests.conftest import Gateway, member_token
from tests.factories import enroll, make_partner, unique


async def _member(db: Database) -> tuple[int, str, str]:
    partner = await make_partner(db)
    email = f"{unique('m')}@example.com"
    member = await enroll(db, partner, email=email)
    return member.id, member.member_number, email


async def test_a_member_logs_in_by_email_or_number_with_the_password_set(db: Database) -> None:
    member_id, number, email = await _member(db)
    assert await credentials.authenticate(db, email, "correct horse battery") is None  # none set yet
    await credentials.set_password(db, member_id, "correct horse battery")
    assert await credentials.authenticate(db, email, "correct horse battery") == member_id
    assert await credentials.authenticate(db, email.upper(), "correct horse battery") == member_id
    assert await credentials.authenticate(db, number, "correct horse battery") == member_id
    assert await credentials.authenticate(db, number, "correct horse batterY") is None
    assert await credentials.authenticate(db, "nobody@example.com", "correct horse battery") is None


@pytest.mark.parametrize("password", ["short", "{number}", "my card {number}!"])
async def test_weak_passwords_are_refused_naming_the_field(db: Database, password: str) -> None:
    member_id, number, _ = await _member(db)
    with pytest.raises(DomainError) as refused:
        await credentials.set_password(db, member_id, password.format(number=number))
    assert refused.value.errors[0].field == "password"
    assert refused.value.errors[0].code == "PASSWORD_TOO_WEAK"


async def test_the_hash_is_argon2id_never_the_password(db: Database) -> None:
    member_id, _, _ = await _member(db)
    await credentials.set_password(db, member_id, "correct horse battery")
    async with db.sessions() as session:
        stored = await session.scalar(select(Member.password_hash).where(Member.id == member_id))
    assert stored is not None and stored.startswith("$argon2id$") and "correct horse" not in stored


async def test_a_member_token_acts_for_the_member_and_only_as_a_member(
    db: Database, gateway: Gateway
) -> None:
    member_id, _, _ = await _member(db)
    token = await member_token(db, member_id)
    claims = await tokens.decode(token, lambda kid: _key(db, kid))
    assert claims["sub"].startswith("TWVtYmVy")  # base64 of "Member:"
    principal = tokens.principal_from(claims)
    assert principal.member_id == member_id and principal.partner_id is None
    assert principal.scopes == {MEMBER_SCOPE} and not principal.is_admin
    # A member's token cannot take partner or admin scopes, whatever it claims.
    forged = tokens.principal_from({**claims, "scope": "member admin:partners points:earn", "partner_id": 1})
    assert forged.scopes == {MEMBER_SCOPE} and forged.partner_id is None


async def _key(db: Database, kid: str) -> ECKey | None:
    async with db.sessions() as session:
        for jwk in await published_keys(session):
            if jwk["kid"] == kid:
                return ECKey.import_key(jwk)
    return None
