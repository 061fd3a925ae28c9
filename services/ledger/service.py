"""Moving points: earn and redeem (refunds and cancellations are in `corrections`).

Each operation is one transaction, runs under the member's wallet lock (taken before anything
else that touches the member's points, or by the earn statement's own wallet update), checks
everything that can refuse it before it writes, and is exactly-once per idempotency key (see
`idempotency`). The ledger talks asyncpg on a connection from the engine's pool (`shared.sql`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.ledger import journal, policy, spending
from services.ledger.corrections import cancel_redemption, reverse_purchase
from services.ledger.earn import earn_points
from services.ledger.idempotency import run_idempotent
from services.ledger.outcomes import (
    CLOCK_SKEW,
    MAX_POINTS,
    Outcome,
    check_common,
    check_money,
    member_for,
)
from services.members import service as members
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.errors import InputError, Validator
from shared.money import Money
from shared.sql import DbConnection

__all__ = ["Outcome", "cancel_redemption", "record_purchase", "redeem_points", "reverse_purchase"]


async def record_purchase(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str,
    order_id: str,
    amount: Money,
    occurred_at: datetime | None = None,
) -> Outcome:
    """Points for a purchase: earn rate x amount, rounded once per purchase; a lot that is
    pending until the partner's return window has passed."""
    partner_id = principal.require_partner("points:earn")
    now = clock.now()
    v = Validator()
    check_common(v, idempotency_key, order_id)
    members.check_member_number(v, member_number)
    check_money(v, amount, "amount", required_currency=None)
    if occurred_at is not None:
        if occurred_at.tzinfo is None:
            v.add("occurredAt", "INVALID", "occurredAt must carry a time zone offset")
        else:
            v.check(
                occurred_at <= now + CLOCK_SKEW,
                "occurredAt",
                "IN_FUTURE",
                "occurredAt must not be in the future",
            )
    v.raise_if_any()
    request = {
        "member": member_number,
        "order": order_id,
        "amount": str(amount.amount),
        "currency": amount.currency,
        "occurred_at": occurred_at,
    }
    try:
        response = await earn_points(
            db,
            client_id=principal.client_id,
            key=idempotency_key,
            partner_id=partner_id,
            member_number=member_number,
            order_id=order_id,
            amount=amount,
            occurred_at=occurred_at or now,
            request=request,
        )
    except InputError as exc:
        return Outcome(result=None, errors=exc.errors)
    return Outcome.of(response)


async def redeem_points(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str,
    points: int,
    order_id: str,
) -> Outcome:
    """Spends available points first to expire first; each lot's share is recorded with its
    issuer, which is what settlement prices."""
    partner_id = principal.require_partner("points:redeem")
    v = Validator()
    check_common(v, idempotency_key, order_id)
    members.check_member_number(v, member_number)
    v.check(
        0 < points <= MAX_POINTS, "points", "INVALID_AMOUNT", f"points must be between 1 and {MAX_POINTS}"
    )
    v.raise_if_any()
    request = {"member": member_number, "order": order_id, "points": points}

    async def work(conn: DbConnection) -> dict[str, Any]:
        now = clock.now()
        found = await member_for(conn, member_number, partner_id)
        wallet = await journal.lock_wallet(conn, found.member_id)
        await spending.refuse_duplicate_order(conn, partner_id, order_id)
        shares = await spending.reserve(conn, found.member_id, wallet, points, now)
        if not found.enrolled:
            await members.link_member(conn, found.member_id, partner_id)
        return await spending.spend(
            conn,
            partner_id=partner_id,
            member_id=found.member_id,
            wallet=wallet,
            shares=shares,
            order_id=order_id,
            now=now,
            policy=await policy.current(db, conn),
        )

    return Outcome.of(
        await run_idempotent(
            db,
            client_id=principal.client_id,
            key=idempotency_key,
            operation="redeemPoints",
            request=request,
            work=work,
        )
    )
