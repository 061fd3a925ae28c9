"""Verifying a Coalition webhook delivery (copy this into your receiver; standard library only).

    from webhook_verify import verify
    if not verify(secret, request_body_bytes, request.headers["Coalition-Signature"]):
        return 400  # not from Coalition, altered, or too old

Verify the raw body exactly as received, before parsing it: re-serialised JSON would not match.
Deliveries are at least once: de-duplicate on the `Coalition-Event-Id` header (the body's `id`).
"""

from __future__ import annotations

import hashlib
import hmac
import time


def verify(secret: str, body: bytes, header: str, tolerance: int = 300, now: float | None = None) -> bool:
    """True when `header` (`t=<unix seconds>,v1=<hex>[,v1=<hex>…]`) signs `body` with `secret` and
    its timestamp is within `tolerance` seconds of now (a replayed old delivery is refused)."""
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    signed = str(timestamp).encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
