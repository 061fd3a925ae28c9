"""Token signing keys: ES256 key pairs in the database, private halves encrypted at rest.

Keys rotate without invalidating tokens: the newest key signs, retired keys stay published in the
JWKS until every token they signed has expired.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from functools import lru_cache

from cryptography.fernet import Fernet
from joserfc.jwk import ECKey
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.models import SigningKey
from shared import clock
from shared.settings import get_settings

ALGORITHM = "ES256"  # small tokens, fast verification, supported by every JOSE library


@lru_cache(maxsize=4)
def _fernet(configured: str | None, data_dir: str) -> Fernet:
    if configured:
        return Fernet(configured.encode())
    # Development: a key generated once and kept beside the embedded database, readable by the
    # owner only. Production sets KEY_ENCRYPTION_KEY (a Fernet key) from its secret store.
    path = os.path.join(data_dir, "key-encryption.key")
    if not os.path.exists(path):
        os.makedirs(data_dir, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
    with open(path, "rb") as handle:
        return Fernet(handle.read().strip())


def fernet() -> Fernet:
    settings = get_settings()
    return _fernet(settings.key_encryption_key, str(settings.data_dir))


async def create_signing_key(session: AsyncSession) -> str:
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
    return kid


async def active_signing_key(session: AsyncSession) -> ECKey | None:
    row = await session.scalar(
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc())
        .limit(1)
    )
    if row is None:
        return None
    return ECKey.import_key(json.loads(fernet().decrypt(row.private_jwk_encrypted.encode())))


async def ensure_signing_key(session: AsyncSession) -> None:
    if await active_signing_key(session) is None:
        await create_signing_key(session)


async def rotate_signing_key(session: AsyncSession) -> str:
    """A new key signs from now on; the old ones retire but stay published for a token lifetime."""
    await session.execute(
        update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=clock.now())
    )
    return await create_signing_key(session)


async def published_keys(session: AsyncSession) -> list[dict[str, str]]:
    """Public JWKs of keys that may still have signed a valid token."""
    horizon = clock.now() - timedelta(seconds=get_settings().token_ttl_seconds + 60)
    rows = await session.scalars(
        select(SigningKey.public_jwk).where(
            (SigningKey.retired_at.is_(None)) | (SigningKey.retired_at > horizon)
        )
    )
    return list(rows)
