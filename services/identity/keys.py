"""Token signing keys: ES256 key pairs in the database, private halves encrypted at rest.

Keys rotate without invalidating tokens: the newest key signs, retired keys stay published in the
JWKS until every token they signed has expired (retired_at + token lifetime + a minute of clock
skew). Creating and rotating keys take a transaction-scoped advisory lock, so gateways starting
together, or two operators rotating at once, never leave two active keys behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from datetime import timedelta
from functools import lru_cache

from cryptography.fernet import Fernet
from joserfc.jwk import ECKey
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.models import SigningKey
from services.identity.tokens import ALGORITHM, CLOCK_SKEW_SECONDS
from shared import clock
from shared.settings import get_settings

KEK_FILE = "key-encryption.key"
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('coalition.identity.signing_keys'))"

# Decrypted private keys by kid: a kid's key never changes, so the token endpoint decrypts each
# key once per process instead of once per request.
_private_keys: dict[str, ECKey] = {}


def _development_kek(data_dir: str) -> bytes:
    """A key generated once beside the embedded database, readable by its owner only.

    Written to a temporary file and linked into place, so two processes starting at once agree
    on one key and neither reads a half-written file.
    """
    path = os.path.join(data_dir, KEK_FILE)
    if not os.path.exists(path):
        os.makedirs(data_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".kek-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
            with contextlib.suppress(FileExistsError):  # another process won: use its key
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    with open(path, "rb") as handle:
        return handle.read().strip()


@lru_cache(maxsize=4)
def _fernet(configured: str | None, data_dir: str) -> Fernet:
    # Production sets KEY_ENCRYPTION_KEY (a Fernet key) from its secret store.
    return Fernet(configured.encode() if configured else _development_kek(data_dir))


def derived_secret(purpose: str) -> bytes:
    """A server secret for `purpose` (HMAC key), derived from the key-encryption key, so every
    process of a deployment agrees on it without another setting."""
    settings = get_settings()
    kek = settings.key_encryption_key.encode() if settings.key_encryption_key else None
    base = kek or _development_kek(str(settings.data_dir))
    return hmac.new(base, f"coalition.{purpose}".encode(), hashlib.sha256).digest()


def fernet() -> Fernet:
    settings = get_settings()
    return _fernet(settings.key_encryption_key, str(settings.data_dir))


async def _lock(session: AsyncSession) -> None:
    await session.execute(text(_LOCK))


async def _create(session: AsyncSession) -> str:
    kid = f"k-{clock.now():%Y%m%d}-{secrets.token_hex(4)}"
    key = ECKey.generate_key("P-256", parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"})
    private = json.dumps(key.as_dict(private=True)).encode()
    session.add(
        SigningKey(
            kid=kid,
            algorithm=ALGORITHM,
            public_jwk=key.as_dict(private=False),
            private_jwk_encrypted=fernet().encrypt(private).decode(),
        )
    )
    await session.flush()
    _private_keys[kid] = key
    return kid


async def active_signing_key(session: AsyncSession) -> ECKey | None:
    """The private key that signs new tokens (the newest active one), or None if there is none."""
    row = (
        await session.execute(
            select(SigningKey.kid, SigningKey.private_jwk_encrypted)
            .where(SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at.desc(), SigningKey.kid)
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    key = _private_keys.get(row.kid)
    if key is None:
        key = ECKey.import_key(json.loads(fernet().decrypt(row.private_jwk_encrypted.encode())))
        _private_keys[row.kid] = key
    return key


async def ensure_signing_key(session: AsyncSession) -> str:
    """The kid of the active key, creating the first one if there is none. The caller commits."""
    await _lock(session)
    key = await active_signing_key(session)
    return key.kid if key is not None else await _create(session)


async def rotate_signing_key(session: AsyncSession) -> str:
    """A new key signs from now on; the old ones retire but stay published for a token lifetime.
    Returns the new kid; the caller commits."""
    await _lock(session)
    await session.execute(
        update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=clock.now())
    )
    return await _create(session)


async def published_keys(session: AsyncSession) -> list[dict[str, str]]:
    """Public JWKs of keys that may still have signed a valid token, newest first."""
    horizon = clock.now() - timedelta(seconds=get_settings().token_ttl_seconds + CLOCK_SKEW_SECONDS)
    rows = await session.scalars(
        select(SigningKey.public_jwk)
        .where(SigningKey.retired_at.is_(None) | (SigningKey.retired_at > horizon))
        .order_by(SigningKey.created_at.desc(), SigningKey.kid)
    )
    return list(rows)
