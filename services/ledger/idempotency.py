"""Exactly-once effects for retried mutations.

The first answer to an idempotency key (per calling client) is stored in the same transaction as
the ledger write it describes, so either both exist or neither does. The key is claimed at the
end, not the start: a retry runs the operation again under the member's wallet lock, finds the
first attempt's natural key taken, and on failing to claim the idempotency key rolls back and
returns the stored answer. Rejections that depend on state (not enough points) are stored too, so
a retry of a refused redemption cannot later succeed by surprise. Plain input errors are not
stored: the caller fixes the input and retries with the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from asyncpg.exceptions import DeadlockDetectedError, SerializationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import DomainError, UserError

Response = dict[str, Any]
MAX_ATTEMPTS = 4


def fingerprint(operation: str, request: dict[str, Any]) -> str:
    canonical = json.dumps({"operation": operation, **request}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock


def _is_retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        return True  # a racing writer took a natural key; the next attempt sees it committed
    original = getattr(exc.orig, "__cause__", None) or exc.orig
    state = getattr(exc.orig, "sqlstate", None) or getattr(original, "sqlstate", None)
    return isinstance(original, DeadlockDetectedError | SerializationError) or (state in RETRYABLE_SQLSTATES)


async def run_idempotent(
    session: AsyncSession,
    *,
    client_id: str,
    key: str,
    operation: str,
    request: dict[str, Any],
    work: Callable[[], Awaitable[Response]],
) -> Response:
    """Runs `work` in a transaction of its own and returns `{"ok": …}` or `{"errors": […]}`.

    `work` must raise DomainError before writing anything, so that an error answer is stored
    without a partial write beside it.
    """
    request_hash = fingerprint(operation, request)
    for attempt in range(MAX_ATTEMPTS):
        try:
            try:
                response: Response = {"ok": await work()}
            except DomainError as exc:
                response = {"errors": [e.as_dict() for e in exc.errors]}
            claimed = await session.scalar(
                text(
                    "INSERT INTO idempotency_keys (client_id, key, operation, request_hash, response)"
                    " VALUES (:c, :k, :o, :h, CAST(:r AS jsonb))"
                    " ON CONFLICT (client_id, key) DO NOTHING RETURNING 1"
                ),
                {
                    "c": client_id,
                    "k": key,
                    "o": operation,
                    "h": request_hash,
                    "r": json.dumps(response, default=str),
                },
            )
            if claimed:
                await session.commit()
                return response
            await session.rollback()
            return await _replay(session, client_id, key, request_hash)
        except DBAPIError as exc:
            await session.rollback()
            if attempt == MAX_ATTEMPTS - 1 or not _is_retryable(exc):
                raise
    raise AssertionError("unreachable")


async def _replay(session: AsyncSession, client_id: str, key: str, request_hash: str) -> Response:
    row = (
        await session.execute(
            text("SELECT request_hash, response FROM idempotency_keys WHERE client_id = :c AND key = :k"),
            {"c": client_id, "k": key},
        )
    ).one()
    await session.rollback()
    if row.request_hash != request_hash:
        reused = UserError(
            code="IDEMPOTENCY_KEY_REUSED",
            field="idempotencyKey",
            message="this idempotencyKey was used before with a different request",
        )
        return {"errors": [reused.as_dict()]}
    return dict(row.response)
