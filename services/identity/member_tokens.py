"""Member sign-in tokens: authorization codes, refresh-token families, and revoking a member.

A code (RFC 6749 section 4.1.2) is single use and a minute long; it is consumed by one UPDATE
that only the first presenter can win, so two racing exchanges cannot both get tokens. A code
presented again revokes what was issued from it (section 4.1.2: "SHOULD revoke all tokens
previously issued based on that authorization code").

Refresh tokens are opaque random strings stored as SHA-256 (256 random bits: a slow hash adds
nothing), grouped in a family per login. Every use rotates: the token presented is marked rotated
and a new one is issued in the same family. A rotated token presented again means two parties
hold the family (a stolen token, OAuth 2.0 Security BCP section 4.14.2): the whole family is
revoked, and so are the access tokens issued with it (their ids go to `revoked_tokens` with a
NOTIFY, as RFC 7009 revocation does), and the answer is `invalid_grant`.

`revoke_member_tokens` (erasure, a password set or reset) revokes every family of the member and
records "every token of this member issued up to now is refused", which every gateway's verifier
hears through `propagation`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity import propagation, tokens
from services.identity.models import (
    AuthorizationCode,
    MemberTokenRevocation,
    OAuthClient,
    RefreshFamily,
    RefreshToken,
    RevokedToken,
)
from shared import clock
from shared.access import MEMBER_SCOPE
from shared.settings import get_settings

CODE_TTL = timedelta(seconds=60)
REFRESH_TTL = timedelta(days=30)
# RFC 7636 section 4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
PKCE_VALUE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


class GrantError(Exception):
    """An RFC 6749 section 5.2 error of the token endpoint (`error`, and a description)."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def s256(verifier: str) -> str:
    """The S256 challenge of a verifier (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def create_code(
    session: AsyncSession,
    *,
    client_id: str,
    redirect_uri: str,
    member_id: int,
    code_challenge: str,
    scope: str = MEMBER_SCOPE,
) -> str:
    """A new authorization code; the caller commits. Only its hash is kept."""
    code = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        AuthorizationCode(
            code_hash=_hash(code),
            client_id=client_id,
            redirect_uri=redirect_uri,
            member_id=member_id,
            code_challenge=code_challenge,
            scope=scope,
            created_at=now,
            expires_at=now + CODE_TTL,
        )
    )
    await session.flush()
    return code


async def member_token_claims(
    session: AsyncSession, *, client_id: str, scope: str, member_id: int
) -> dict[str, Any]:
    """The claims of a new access token for a member, never refused by the member's revocation
    mark. The mark refuses every token with `iat <= revoked_before`, and `iat` is whole seconds, so
    a token issued in the same second as the mark (a member who resets the password and signs in
    at once) would be refused too: such a token says the next second instead, at most a second or
    two ahead of the clock, well inside the verifier's CLOCK_SKEW_SECONDS. Only tokens of families
    the revocation did not revoke get here (a revoked family refreshes nothing), so nothing issued
    before the revocation gains by it; and a later mark never falls before that second
    (`revoke_member_tokens`)."""
    mark = await session.scalar(
        select(MemberTokenRevocation.revoked_before).where(MemberTokenRevocation.member_id == member_id)
    )
    return tokens.access_token_claims(
        client_id=client_id,
        scope=scope,
        partner_id=None,
        member_id=member_id,
        not_before_second=None if mark is None else int(mark.timestamp()) + 1,
    )


async def _issue(session: AsyncSession, family: RefreshFamily, key: ECKey) -> dict[str, Any]:
    """A new access token and refresh token in `family` (the rows added to the session)."""
    claims = await member_token_claims(
        session, client_id=family.client_id, scope=family.scope, member_id=family.member_id
    )
    refresh = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        RefreshToken(
            token_hash=_hash(refresh),
            family_id=family.id,
            created_at=now,
            expires_at=now + REFRESH_TTL,
            access_jti=claims["jti"],
            access_expires_at=datetime.fromtimestamp(claims["exp"], now.tzinfo),
        )
    )
    await session.flush()
    return {
        "access_token": tokens.sign(claims, key),
        "token_type": "Bearer",
        "expires_in": get_settings().token_ttl_seconds,
        "refresh_token": refresh,
        "scope": family.scope,
    }


async def revoke_family(session: AsyncSession, family_id: str) -> list[str]:
    """Revoke a family: its refresh tokens stop working and the unexpired access tokens issued
    with them are recorded as revoked, with a NOTIFY each. Returns the notices to wait for."""
    now = clock.now()
    await session.execute(
        update(RefreshFamily)
        .where(RefreshFamily.id == family_id, RefreshFamily.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    live = (
        await session.execute(
            select(RefreshToken.access_jti, RefreshToken.access_expires_at).where(
                RefreshToken.family_id == family_id, RefreshToken.access_expires_at > now
            )
        )
    ).all()
    notices = []
    for jti, expires_at in live:
        await session.execute(
            insert(RevokedToken)
            .values(jti=jti, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=[RevokedToken.jti])
        )
        notices.append(await propagation.notify_revoked(session, jti, expires_at.timestamp()))
    return notices


async def revoke_refresh_token(
    session: AsyncSession, client: OAuthClient, refresh_token: str
) -> list[str] | None:
    """RFC 7009 for a member app's own refresh token: its whole family is revoked (every refresh
    token of that sign-in, and the access tokens issued with them: section 2.1, "SHOULD also
    invalidate all access tokens based on the same authorization grant"). Returns the notices to
    wait for, or None when the token is no refresh token of `client` (unknown, or another app's:
    left alone, and the endpoint answers 200 all the same). The caller commits."""
    found = (
        await session.execute(
            select(RefreshFamily.id, RefreshFamily.client_id)
            .join(RefreshToken, RefreshToken.family_id == RefreshFamily.id)
            .where(RefreshToken.token_hash == _hash(refresh_token))
        )
    ).first()
    if found is None or not hmac.compare_digest(found.client_id, client.client_id):
        return None
    return await revoke_family(session, found.id)


async def exchange_code(
    session: AsyncSession,
    client: OAuthClient,
    *,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    key: ECKey,
) -> tuple[dict[str, Any] | None, list[str], GrantError | None]:
    """RFC 6749 section 4.1.3 with RFC 7636 section 4.6: the tokens for a code, or the error.
    Returns (response, notices, error); the caller commits either way (a replay's revocation must
    stick although the answer is an error)."""
    now = clock.now()
    row = await session.scalar(
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == _hash(code), AuthorizationCode.consumed_at.is_(None))
        .values(consumed_at=now)
        .returning(AuthorizationCode)
    )
    invalid = GrantError("invalid_grant", "the authorization code is invalid, expired or already used")
    if row is None:
        used = await session.scalar(
            select(AuthorizationCode).where(AuthorizationCode.code_hash == _hash(code))
        )
        notices: list[str] = []
        if used is not None and used.family_id is not None:
            notices = await revoke_family(session, used.family_id)
        return None, notices, invalid
    if (
        not hmac.compare_digest(row.client_id, client.client_id)
        or row.redirect_uri != redirect_uri
        or row.expires_at <= now
    ):
        return None, [], invalid
    if not PKCE_VALUE.match(code_verifier) or not hmac.compare_digest(
        s256(code_verifier), row.code_challenge
    ):
        return None, [], GrantError("invalid_grant", "the code_verifier does not match the code_challenge")
    family = RefreshFamily(
        id=secrets.token_urlsafe(16),
        client_id=client.client_id,
        member_id=row.member_id,
        scope=row.scope,
        created_at=now,
    )
    session.add(family)
    await session.flush()
    row.family_id = family.id
    return await _issue(session, family, key), [], None


async def refresh(
    session: AsyncSession,
    client: OAuthClient,
    *,
    refresh_token: str,
    scope: str | None,
    key: ECKey,
) -> tuple[dict[str, Any] | None, list[str], GrantError | None]:
    """RFC 6749 section 6 with rotation and replay detection; the caller commits either way."""
    invalid = GrantError("invalid_grant", "the refresh token is invalid, expired or revoked")
    found = (
        await session.execute(
            select(RefreshToken, RefreshFamily)
            .join(RefreshFamily, RefreshFamily.id == RefreshToken.family_id)
            .where(RefreshToken.token_hash == _hash(refresh_token))
            # The family too: `revoke_member_tokens` waits for a refresh in flight, so the token
            # it mints is older than the revocation mark (and one after it sees the family revoked).
            .with_for_update(of=(RefreshToken, RefreshFamily))
        )
    ).first()
    if found is None:
        return None, [], invalid
    token, family = found
    if family.client_id != client.client_id or family.revoked_at is not None:
        return None, [], invalid
    if token.rotated_at is not None:  # a replay: someone else holds this family
        return None, await revoke_family(session, family.id), invalid
    now = clock.now()
    if token.expires_at <= now:
        return None, [], invalid
    if scope is not None and scope.strip() and set(scope.split()) - set(family.scope.split()):
        return None, [], GrantError("invalid_scope", f"a refresh may only ask for '{family.scope}'")
    token.rotated_at = now
    return await _issue(session, family, key), [], None


async def revoke_member_tokens(session: AsyncSession, member_id: int) -> str:
    """Every token of the member stops working: each refresh family is revoked, unused codes are
    voided, and every access token issued to the member until now is refused by every gateway
    (a per-member "issued at or before T" mark, heard through LISTEN/NOTIFY once the caller
    commits). Returns the notice id for `propagation.applied_everywhere`. Used by erasure and by
    every password change (reset, support's set-password).

    The order closes the races with grants in flight: the codes first (an exchange in flight holds
    its code's row, so this waits for it to commit), then the families (a refresh in flight holds
    its family's row; the new statement also sees a family that exchange just created), and the
    clock for the mark last, so a token those grants minted has `iat` at or before the mark."""
    now = clock.now()
    await session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.member_id == member_id, AuthorizationCode.consumed_at.is_(None))
        .values(consumed_at=now)
    )
    await session.execute(
        update(RefreshFamily)
        .where(RefreshFamily.member_id == member_id, RefreshFamily.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    stmt = insert(MemberTokenRevocation).values(member_id=member_id, revoked_before=clock.now())
    # A token issued since an earlier mark may say the second after it (`member_token_claims`),
    # so a new mark never falls before that second: it covers every token issued before it.
    mark = await session.scalar(
        stmt.on_conflict_do_update(
            index_elements=[MemberTokenRevocation.member_id],
            set_={
                "revoked_before": func.greatest(
                    stmt.excluded.revoked_before,
                    func.date_trunc("second", MemberTokenRevocation.revoked_before) + timedelta(seconds=1),
                )
            },
        ).returning(MemberTokenRevocation.revoked_before)
    )
    assert mark is not None
    return await propagation.notify_member_revoked(session, member_id, mark.timestamp())
