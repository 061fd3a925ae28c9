"""Webhook secrets and signatures.

`Coalition-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` — the
scheme Stripe made familiar, so receivers know it: the timestamp is signed with the body, so a
captured delivery cannot be replayed later than the receiver's tolerance (docs/webhook_verify.py
checks five minutes). During a secret rotation's overlap the header carries one `v1=` per live
secret, newest first; a receiver accepts the delivery when any of them matches its secret.

Secrets are 32 random bytes, shown once as `whsec_` + URL-safe base64, and stored sealed with the
gateway's key encryption key (services.identity.keys.fernet): the worker must sign with the secret
itself, so it is encrypted at rest rather than hashed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from services.identity.keys import fernet

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def seal(secret: str) -> str:
    return fernet().encrypt(secret.encode()).decode()


def unseal(sealed: str) -> str:
    return fernet().decrypt(sealed.encode()).decode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secrets_: list[str], timestamp: int, body: bytes) -> str:
    """The header value for a body signed at `timestamp` with each live secret, newest first."""
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets_)])
