"""OAuth clients: creating them, authenticating them, and what admins do to them afterwards.

Client secrets are 256-bit random strings shown once; the database keeps a SHA-256 of them (a slow
password hash adds nothing against that much entropy and would make the token endpoint a CPU
sink). A lost secret is never shown again: an admin rotates it.

Disabling a client and rotating its secret also take away the tokens it already holds: the
change is committed together with a NOTIFY (`propagation`), so every gateway's verifier refuses
those tokens as soon as the transaction commits. Rotation refuses every token issued under an
older secret (each token carries the `secret_version` it was issued under): a secret is rotated
because it leaked, and whoever holds the leaked one may hold tokens too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity import propagation
from services.identity.models import OAuthClient
from shared import audit_log
from shared.access import ADMIN_SCOPES, ALL_SCOPES, MEMBER_SCOPE, Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator

MAX_NAME_LENGTH = 200
MAX_CLIENT_ID_LENGTH = 200
MANAGING_SCOPE = "admin:partners"  # admins onboard partners and issue their credentials


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str
    scopes: list[str]


@dataclass(frozen=True)
class ClientView:
    """What an admin sees of a client: everything but the secret's hash."""

    client_id: str
    name: str
    scopes: list[str]
    partner_id: int | None
    created_at: datetime
    disabled_at: datetime | None
    secret_version: int
    secret_rotated_at: datetime | None

    @classmethod
    def of(cls, row: OAuthClient) -> ClientView:
        return cls(
            client_id=row.client_id,
            name=row.name,
            scopes=sorted(row.allowed_scopes),
            partner_id=row.partner_id,
            created_at=row.created_at,
            disabled_at=row.disabled_at,
            secret_version=row.secret_version,
            secret_rotated_at=row.secret_rotated_at,
        )


@dataclass(frozen=True)
class RotatedSecret:
    client: ClientView
    client_secret: str  # shown once, stored nowhere


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


async def create_client(
    session: AsyncSession, *, name: str, scopes: Iterable[str], partner_id: int | None = None
) -> ClientCredentials:
    """A client-credentials client. The caller commits; the secret is in the return value and
    nowhere else, so it is shown once."""
    allowed = sorted(set(scopes))
    v = Validator()
    v.text(name, "name", max_length=MAX_NAME_LENGTH)
    unknown = [s for s in allowed if s not in ALL_SCOPES]
    v.check(not unknown, "scopes", UserErrorCode.UNKNOWN_SCOPE, f"unknown scopes: {', '.join(unknown)}")
    v.check(bool(allowed), "scopes", UserErrorCode.REQUIRED, "a client needs at least one scope")
    # A `member` token must name a member, which only a member's own sign-in can do.
    v.check(
        MEMBER_SCOPE not in allowed,
        "scopes",
        UserErrorCode.INVALID,
        f"the '{MEMBER_SCOPE}' scope is granted to member sign-ins, never to client credentials",
    )
    if partner_id is not None:
        v.check(
            not set(allowed) & ADMIN_SCOPES,
            "scopes",
            UserErrorCode.INVALID,
            "partner credentials cannot carry admin scopes",
        )
    v.raise_if_any()
    client_id = "cl_" + secrets.token_hex(10)  # 80 random bits: unguessable, easy to read out
    secret = _new_secret()
    session.add(
        OAuthClient(
            client_id=client_id,
            secret_hash=hash_secret(secret),
            name=name,
            partner_id=partner_id,
            allowed_scopes=allowed,
        )
    )
    await session.flush()
    return ClientCredentials(client_id, secret, allowed)


async def load_client(session: AsyncSession, client_id: str) -> OAuthClient | None:
    """An enabled client by id."""
    return await session.scalar(
        select(OAuthClient).where(OAuthClient.client_id == client_id, OAuthClient.disabled_at.is_(None))
    )


async def authenticate_client(
    session: AsyncSession, client_id: str, client_secret: str
) -> OAuthClient | None:
    """The enabled client whose secret this is, or None: one query and one hash comparison
    whether the id is unknown, disabled or the secret wrong, so timing does not tell them apart."""
    client = await load_client(session, client_id)
    expected = client.secret_hash if client is not None else hash_secret(_new_secret())
    matches = hmac.compare_digest(expected, hash_secret(client_secret))
    # A member app (public client) has no secret: it never authenticates here.
    return client if matches and client is not None and not client.public else None


async def token_allowed(session: AsyncSession, client_id: str, secret_version: int) -> bool:
    """Whether a token of `client_id` issued under `secret_version` is still good: the client is
    enabled and its secret has not been rotated since (introspection asks; the verifier keeps the
    same facts in memory)."""
    current = await session.scalar(
        select(OAuthClient.secret_version).where(
            OAuthClient.client_id == client_id, OAuthClient.disabled_at.is_(None)
        )
    )
    return current is not None and secret_version >= current


async def list_clients(db: Database, principal: Principal) -> list[ClientView]:
    """Every client, oldest first, disabled ones included (marked), as an admin sees them: never a
    secret nor its hash. Who holds credentials is for those who issue them (admin:partners)."""
    principal.require_admin(MANAGING_SCOPE)
    async with db.sessions() as session:
        rows = await session.scalars(select(OAuthClient).order_by(OAuthClient.created_at, OAuthClient.id))
        return [ClientView.of(row) for row in rows]


async def _managed_client(session: AsyncSession, principal: Principal, client_id: str) -> OAuthClient:
    """The client an admin names, locked for the change; userErrors on `clientId` otherwise."""
    principal.require_admin(MANAGING_SCOPE)
    v = Validator()
    v.text(client_id, "clientId", max_length=MAX_CLIENT_ID_LENGTH)
    v.raise_if_any()
    row = await session.scalar(
        select(OAuthClient).where(OAuthClient.client_id == client_id.strip()).with_for_update()
    )
    if row is None:
        raise DomainError.single(
            UserErrorCode.CLIENT_NOT_FOUND, f"no client has the id {client_id!r}", "clientId"
        )
    return row


async def disable_client(db: Database, principal: Principal, client_id: str) -> ClientView:
    """Disable a client for good: no new tokens, and every gateway refuses its live tokens once
    this commits. Disabling a disabled client changes nothing (it keeps its first disabledAt)."""
    async with db.sessions() as session, session.begin():
        row = await _managed_client(session, principal, client_id)
        already = row.disabled_at is not None
        if not already:
            row.disabled_at = await session.scalar(select(func.now()))
        await audit_log.record(
            session,
            principal,
            "client.disable",
            f"client:{row.client_id}",
            {"name": row.name, "partner_id": row.partner_id, "already_disabled": already},
        )
        await session.flush()
        notice = await propagation.notify_client(session, row)
        view = ClientView.of(row)
    await propagation.applied_everywhere(db, notice)
    return view


async def rotate_client_secret(db: Database, principal: Principal, client_id: str) -> RotatedSecret:
    """A new secret for a client, returned once. The old secret stops working, and every token
    issued under it is refused by every gateway once this commits. A disabled client stays
    disabled (its new secret gets no tokens)."""
    async with db.sessions() as session, session.begin():
        row = await _managed_client(session, principal, client_id)
        secret = _new_secret()
        row.secret_hash = hash_secret(secret)
        row.secret_version += 1
        row.secret_rotated_at = await session.scalar(select(func.now()))
        await audit_log.record(
            session,
            principal,
            "client.rotate_secret",
            f"client:{row.client_id}",
            {"name": row.name, "partner_id": row.partner_id, "secret_version": row.secret_version},
        )
        await session.flush()
        notice = await propagation.notify_client(session, row)
        rotated = RotatedSecret(client=ClientView.of(row), client_secret=secret)
    await propagation.applied_everywhere(db, notice)
    return rotated
