"""Booking the points of a purchase: one statement on the usual path.

The ledger keeps the books and knows no rules: how many points a purchase earns is decided by the
caller (services/earning) and passed in, with an opaque document (`detail`: the purchase's lines
and earn breakdown) that the ledger stores with the purchase and hands back, never reads. A caller
whose decision depends on what the member earned before (a cap per member and day) passes
`decide` instead: it runs inside the transaction, under the member's wallet lock, so concurrent
earns of one member see each other exactly.

The usual earn (a known member, no open debt, a new order id, a fresh idempotency key) is a single
statement in autocommit: it locks the wallet row, claims the order id with the purchase row, hangs
the entry, postings, lot and wallet update off it, and stores the answer under the idempotency key
— without ON CONFLICT, so a key taken by a racing or earlier request aborts the whole statement
and nothing is written. Two round trips in all (member lookup, this statement) instead of six.
The statement also writes the earn's points.earned event (docs/events.md) into the outbox, its
`transactionId` built in SQL from the entry id the statement draws: the event commits exactly
with the points, on both paths, and a refused earn (a taken order id: no purchase row) has none.

A purchase that earns points links the member to the partner (presenting the card at the till is
consent), with its member.linked event; one that earns nothing (0.01 at 1 point per unit) does
not, and writes no event either.

Anything unusual — a duplicate order, an open debt to repay, a missing member, a member the ledger
never booked for (no wallet yet) — falls back to the general path: the same statement inside an
ordinary transaction under `run_idempotent`, followed by whatever the case needs. Both paths
store the same answer, so a replay cannot tell them apart.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.ledger import accounts, coalition_earn, earn_booking, journal, live, policy
from services.ledger.idempotency import fingerprint, replay, run_idempotent
from services.ledger.live import BalanceChangeReason
from services.ledger.outcomes import Outcome, check_common, check_money
from services.ledger.purchases import qualifying_points
from services.members import service as members
from services.members import tiers as member_tiers
from services.partners import service as partners
from services.partners.models import PartnerKind
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, InputError, Validator
from shared.money import Money
from shared.sql import DbConnection, connection

OPERATION = "recordPurchase"
IDEMPOTENCY_PK = "pk_idempotency_keys"

# The statement and the terms it books live in `earn_booking`; re-exported, as callers name them here.
EARN = earn_booking.EARN
EARN_EXTENDING = earn_booking.EARN_EXTENDING
Earn = earn_booking.Earn
EarnDecision = earn_booking.EarnDecision
Decide = earn_booking.Decide


async def earn_points(
    db: Database,
    *,
    client_id: str,
    key: str,
    partner_id: int,
    member_number: str,
    order_id: str,
    amount: Money,
    occurred_at: datetime,
    request: dict[str, Any],
    decision: EarnDecision | None,
    decide: Decide | None = None,
) -> dict[str, Any]:
    """`{"ok": …}` or `{"errors": […]}`, as `run_idempotent` answers. Exactly one of `decision`
    (known before any lock: the one-statement path) and `decide` (needs the lock: the general path)."""
    request_hash = fingerprint(OPERATION, request)
    async with connection(db) as conn:
        partner = await partners.cached_partner(db, conn, partner_id)
        if partner is None or partner.kind == PartnerKind.COALITION:  # the coalition never earns itself
            raise InputError.single(UserErrorCode.PARTNER_NOT_FOUND, "the calling partner no longer exists")
        if partner.kind == PartnerKind.CHARITY:
            raise InputError.single(
                UserErrorCode.PARTNER_NOT_FOUND, "a charity does not earn points: members donate to it"
            )
        await accounts.ensure_partner_accounts(db, conn, partner_id)
        if amount.currency != partner.currency:
            raise InputError.single(
                UserErrorCode.CURRENCY_MISMATCH,
                f"amount.currency must be {partner.currency}",
                "amount.currency",
            )

        expiry = await policy.current(db, conn)
        now = clock.now()
        if expiry.expiry_for(occurred_at, now) <= now:
            raise InputError.single(
                UserErrorCode.TOO_OLD,
                "points for a purchase this old would already have expired",
                "occurredAt",
            )

        def terms(member_id: int, decided: EarnDecision) -> Earn:
            assert partner is not None
            return Earn(
                partner_id=partner_id,
                member_id=member_id,
                order_id=order_id,
                amount=amount,
                points=decided.points,
                occurred_at=occurred_at,
                available_at=occurred_at + timedelta(days=partner.return_window_days),
                expires_at=expiry.expiry_for(occurred_at, now),
                recorded_at=now,
                extend_until=clock.add_months(now, expiry.months) if expiry.activity_extends else None,
                detail=decided.detail,
                member_number=member_number,
                coalition_points=decided.coalition_points,
            )

        found = await members.cached_member_at_partner(db, conn, member_number, partner_id)
        # With tiers defined, every earn may raise the member's tier, inside its transaction: the
        # general path. Coalition-funded points too (coalition_earn.py): two issuers, two lots.
        tiers = await member_tiers.cached_tiers(db, conn)
        if found is not None and decision is not None and decision.coalition_points == 0 and not tiers:
            earn = terms(found.member_id, decision)
            try:
                row = await (EARN_EXTENDING if earn.extend_until else EARN).fetchrow(
                    conn,
                    **earn.params(),
                    client=client_id,
                    key=key,
                    hash=request_hash,
                    operation=OPERATION,
                    claim=True,
                    allow_debt=False,
                )
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != IDEMPOTENCY_PK:
                    raise
                return await replay(conn, client_id, key, request_hash)
            if row is not None:
                if not found.enrolled and earn.points > 0:  # presenting the card is consent
                    await members.link_member(conn, found.member_id, member_number, partner_id)
                await live.notify(conn, found.member_id, BalanceChangeReason.EARN, now)
                return {"ok": earn.answer(row["entry_id"])}

    async def general(conn: DbConnection) -> dict[str, Any]:
        member = await members.member_at_partner(conn, member_number, partner_id)
        if member is None:
            raise members.member_not_found()
        await journal.lock_wallet(conn, member.member_id)  # opens the wallet of a first earn
        # A savepoint: what `decide` wrote (a promo code's use) is undone with a refused earn,
        # since the refusal is stored and committed under the idempotency key.
        async with conn.transaction():
            decided = (
                decision if decision is not None else await _decide_locked(decide, conn, member.member_id)
            )
            earn = terms(member.member_id, decided)
            row = await (EARN_EXTENDING if earn.extend_until else EARN).fetchrow(
                conn,
                **earn.params(),
                client=client_id,
                key=key,
                hash=request_hash,
                operation=OPERATION,
                claim=False,
                allow_debt=True,
            )
            if row is None:
                raise DomainError.single(
                    UserErrorCode.DUPLICATE_ORDER,
                    "a purchase with this orderId was already recorded",
                    "orderId",
                )
        if not member.enrolled and earn.points > 0:
            await members.link_member(conn, member.member_id, member_number, partner_id)
        sources = [journal.LotShare(row["lot_id"], partner_id, earn.points)]
        if decided.coalition_points > 0:
            sources = await coalition_earn.split_earn(
                conn,
                partner_id=partner_id,
                entry_id=row["entry_id"],
                lot_id=row["lot_id"],
                points=earn.points,
                coalition_points=decided.coalition_points,
            )
        if row["debt"]:
            await journal.repay_debt(
                conn,
                member_id=member.member_id,
                entry_id=row["entry_id"],
                debt=row["debt"],
                sources=sources,
                occurred_at=clock.now(),
            )
        if tiers and earn.points > 0:
            await raise_tiers(conn, tiers, [member.member_id], now)
        await live.notify(conn, member.member_id, BalanceChangeReason.EARN, now)
        return earn.answer(row["entry_id"])

    return await run_idempotent(
        db, client_id=client_id, key=key, operation=OPERATION, request=request, work=general
    )


async def raise_tiers(
    conn: DbConnection, tiers: member_tiers.TierSet, member_ids: list[int], now: datetime
) -> None:
    """Upgrades at once, in the earn's transaction (wallets locked): each member to the highest
    tier their qualifying points over the rolling window now reach (services/members/tiers.py)."""
    qualifying = await qualifying_points(conn, member_ids, member_tiers.window_start(now))
    await member_tiers.upgrade(conn, tiers, qualifying, now)


async def _decide_locked(decide: Decide | None, conn: DbConnection, member_id: int) -> EarnDecision:
    if decide is None:
        raise TypeError("earn_points needs a decision or a decide function")
    return await decide(conn, member_id)


def check_purchase(
    v: Validator,
    *,
    idempotency_key: str,
    member_number: str,
    order_id: str,
    amount: Money,
    occurred_at: datetime | None,
) -> None:
    """The checks of a purchase's own fields, for the ledger and for the earning service's
    preview (which must refuse exactly what recordPurchase refuses)."""
    check_common(v, idempotency_key, order_id)
    members.check_member_number(v, member_number)
    check_money(v, amount, "amount", required_currency=None)
    if occurred_at is not None and v.instant(occurred_at, "occurredAt"):
        v.check(
            occurred_at <= clock.now() + clock.CLOCK_SKEW,
            "occurredAt",
            UserErrorCode.IN_FUTURE,
            "occurredAt must not be in the future",
        )


def purchase_request(
    member_number: str,
    order_id: str,
    amount: Money,
    occurred_at: datetime | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What an idempotency key is bound to: the same purchase sent through recordPurchase or
    recordPurchases (or the import) fingerprints the same, so a retry through either replays.
    `extra` (the earning service's lines, promo codes, channel) is left out when empty, so a
    plain purchase's fingerprint is what it always was."""
    return {
        "member": member_number,
        "order": order_id,
        "amount": str(amount.amount),
        "currency": amount.currency,
        "occurred_at": occurred_at,
        **(extra or {}),
    }


async def record_purchase(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str,
    order_id: str,
    amount: Money,
    occurred_at: datetime | None = None,
    decision: EarnDecision | None,
    decide: Decide | None = None,
    request_extra: dict[str, Any] | None = None,
) -> Outcome:
    """Books the points the caller decided for a purchase: a lot that is pending until the
    partner's return window has passed. `request_extra` (the purchase's lines, promo codes…) is
    part of what the idempotency key names; left out when empty, so a plain purchase's
    fingerprint is what it always was."""
    partner_id = principal.require_partner("points:earn")
    now = clock.now()
    v = Validator()
    check_purchase(
        v,
        idempotency_key=idempotency_key,
        member_number=member_number,
        order_id=order_id,
        amount=amount,
        occurred_at=occurred_at,
    )
    v.raise_if_any()
    request = purchase_request(member_number, order_id, amount, occurred_at, request_extra)
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
            decision=decision,
            decide=decide,
        )
    except InputError as exc:
        return Outcome(result=None, errors=exc.errors)
    return Outcome.of(response)
