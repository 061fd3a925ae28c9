"""Undoing points: refunds of purchases (cancellations of redemptions: `cancellations`).

Corrections are new entries, never edits: a refund posts a REVERSE entry, and the lot movements it
causes are recorded like any other, so settlement sees them in the period they happen. Its event
is points.reversed (kind REFUND), written once nothing can refuse the refund any more.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from services.ledger import accounts, coalition_earn, events, journal, live
from services.ledger.events import ReversalKind
from services.ledger.idempotency import run_idempotent
from services.ledger.live import BalanceChangeReason
from services.ledger.models import AccountKind, ConsumptionKind, EntryKind
from services.ledger.outcomes import Outcome, check_common, check_money
from services.partners import coalition
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, InputError, Validator
from shared.money import Money, quantize_money
from shared.sql import DbConnection, Sql

PURCHASE_MEMBER = Sql("SELECT member_id FROM purchases WHERE partner_id = :p AND order_id = :o")
PURCHASE = Sql(
    "SELECT id, amount, currency, points_earned, points_reversed, amount_reversed, entry_id, lot_id,"
    " coalition_points, coalition_lot_id,"
    " earn_detail::text AS earn_detail, lines_refunded::text AS lines_refunded"
    " FROM purchases WHERE partner_id = :p AND order_id = :o"
)
RECORD_REFUND = Sql(
    "UPDATE purchases SET points_reversed = points_reversed + :points,"
    " amount_reversed = amount_reversed + :amount,"
    " lines_refunded = COALESCE(CAST(:lines AS jsonb), lines_refunded) WHERE id = :id"
)


@dataclass(frozen=True)
class PurchaseToRefund:
    """A purchase as a refund's caller sees it, under the member's wallet lock."""

    amount: Decimal
    currency: str
    points_earned: int
    points_reversed: int
    amount_reversed: Decimal
    detail: dict[str, Any] | None  # the earning service's document, as it stored it
    lines_refunded: dict[str, Any] | None  # its reversal counter per line


@dataclass(frozen=True)
class RefundDecision:
    """What a refund takes back, decided by the caller from the purchase's own document."""

    points: int
    amount: Decimal
    lines_refunded: dict[str, Any] | None


# Decides a refund (or None: pro rata on the amount) inside its transaction, under the lock.
DecideRefund = Callable[[PurchaseToRefund, Decimal | None], RefundDecision | None]


@dataclass(frozen=True)
class RefundBooked:
    """A refund just booked, as the caller's `on_refunded` hook sees it (still in its transaction,
    under the member's wallet lock): what the caller hangs off the refund (the earning service
    gives back the promo codes a fully refunded purchase used)."""

    partner_id: int
    member_id: int
    order_id: str
    fully_refunded: bool  # nothing of the purchase's amount is left to refund


OnRefunded = Callable[[DbConnection, RefundBooked], Awaitable[None]]
LOT_REMAINING = Sql("SELECT remaining FROM lots WHERE id = :id AND expired_at IS NULL AND expires_at > :now")
OPEN_DEBT = Sql(
    "INSERT INTO member_debts (member_id, creditor_partner_id, entry_id, points, remaining)"
    " VALUES (:m, :p, :entry, :points, :points)"
)


async def reverse_purchase(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    order_id: str,
    amount: Money | None,
    decide: DecideRefund | None = None,
    request_extra: dict[str, Any] | None = None,
    on_refunded: OnRefunded | None = None,
) -> Outcome:
    """A full or partial refund takes back the points pro rata, cumulatively floored (so the
    refunds of a whole purchase take back exactly what it earned, never more) — unless `decide`
    (the earning service's refund by line) says what to take back from the purchase's document.

    Points still in the purchase's lot come from it; points already spent are clawed back from the
    member's other points (available first, then pending); what is left becomes a debt that later
    credits repay, and until then the member's balance is negative.
    """
    partner_id = principal.require_partner("points:reverse")
    v = Validator()
    check_common(v, idempotency_key, order_id)
    if amount is not None:
        check_money(v, amount, "amount", required_currency=None)
    v.raise_if_any()
    request = {
        "order": order_id,
        "amount": str(amount.amount) if amount else None,
        "currency": amount.currency if amount else None,
        **(request_extra or {}),
    }

    async def work(conn: DbConnection) -> dict[str, Any]:
        now = clock.now()
        member_id = await PURCHASE_MEMBER.fetchval(conn, p=partner_id, o=order_id)
        if member_id is None:
            raise DomainError.single(
                UserErrorCode.PURCHASE_NOT_FOUND, "no purchase has this orderId", "orderId"
            )
        wallet = await journal.lock_wallet(conn, member_id)
        purchase = await PURCHASE.fetchrow(conn, p=partner_id, o=order_id)
        assert purchase is not None
        if amount is not None and amount.currency != purchase["currency"]:
            raise InputError.single(
                UserErrorCode.CURRENCY_MISMATCH,
                f"amount.currency must be {purchase['currency']}",
                "amount.currency",
            )
        left_to_refund = purchase["amount"] - purchase["amount_reversed"]
        refund = quantize_money(amount.amount if amount else left_to_refund, purchase["currency"])
        if left_to_refund <= 0:
            raise DomainError.single(
                UserErrorCode.ALREADY_REVERSED, "this purchase is fully refunded", "orderId"
            )
        if refund > left_to_refund:
            raise DomainError.single(
                UserErrorCode.REFUND_EXCEEDS_PURCHASE,
                f"only {quantize_money(left_to_refund, purchase['currency'])} "
                f"{purchase['currency']} of this purchase is left to refund",
                "amount.amount",
            )
        decided = None
        if decide is not None:
            decided = decide(_to_refund(purchase), amount.amount if amount else None)
        if decided is not None:
            refund, points, lines = decided.amount, decided.points, decided.lines_refunded
        else:
            refunded = purchase["amount_reversed"] + refund
            total = (purchase["points_earned"] * refunded / purchase["amount"]).to_integral_value(
                rounding=ROUND_FLOOR
            )
            points, lines = int(total) - purchase["points_reversed"], None
        entry_id = await _take_back(
            conn,
            partner_id=partner_id,
            member_id=member_id,
            wallet=wallet,
            lot_id=purchase["lot_id"],
            coalition_lot_id=purchase["coalition_lot_id"],
            coalition_share=coalition_earn.refund_share(
                purchase["points_earned"], purchase["coalition_points"], purchase["points_reversed"], points
            ),
            points=points,
            order_id=order_id,
            related_entry_id=purchase["entry_id"],
            now=now,
        )
        await RECORD_REFUND.execute(
            conn,
            points=points,
            amount=refund,
            lines=json.dumps(lines) if lines is not None else None,
            id=purchase["id"],
        )
        if on_refunded is not None:
            fully = purchase["amount_reversed"] + refund >= purchase["amount"]
            await on_refunded(conn, RefundBooked(partner_id, member_id, order_id, fully))
        if points > 0:  # a refund too small to take back a point moves none: no event
            await events.record_reversed(
                conn, member_id, partner_id, entry_id, points, ReversalKind.REFUND, order_id, now
            )
        await live.notify(conn, member_id, BalanceChangeReason.REVERSE, now)
        return {
            "reversal_id": entry_id,
            "points": points,
            "refunded": {"amount": str(refund), "currency": purchase["currency"]},
        }

    return Outcome.of(
        await run_idempotent(
            db,
            client_id=principal.client_id,
            key=idempotency_key,
            operation="reversePurchase",
            request=request,
            work=work,
        )
    )


def _to_refund(row: Any) -> PurchaseToRefund:
    return PurchaseToRefund(
        amount=row["amount"],
        currency=row["currency"],
        points_earned=row["points_earned"],
        points_reversed=row["points_reversed"],
        amount_reversed=row["amount_reversed"],
        detail=json.loads(row["earn_detail"]) if row["earn_detail"] else None,
        lines_refunded=json.loads(row["lines_refunded"]) if row["lines_refunded"] else None,
    )


async def _take_back(
    conn: DbConnection,
    *,
    partner_id: int,
    member_id: int,
    wallet: journal.WalletState,
    lot_id: int | None,
    coalition_lot_id: int | None,
    coalition_share: int,
    points: int,
    order_id: str,
    related_entry_id: int,
    now: datetime,
) -> int:
    """The REVERSE entry. The coalition's share comes back from its own lot of the purchase, as
    far as that lot still holds it; what it no longer holds (spent, expired) is taken like any
    refund, as the refunding partner's (its lot, then clawback, then debt), so the coalition is
    never a creditor of a member and its issuance account moves only with its own lots."""
    issuance = await accounts.partner_account(conn, partner_id, AccountKind.PARTNER_ISSUANCE)
    coalition_take, coalition_issuer = 0, None
    if coalition_lot_id is not None and coalition_share > 0:
        coalition_issuer = await coalition.coalition_issuer_id(conn)
        remaining = await LOT_REMAINING.fetchval(conn, id=coalition_lot_id, now=now)
        coalition_take = min(remaining or 0, coalition_share, points)
    postings = [(wallet.account_id, -points), (issuance, points - coalition_take)]
    if coalition_issuer is not None and coalition_take:
        coalition_issuance = await accounts.partner_account(
            conn, coalition_issuer, AccountKind.PARTNER_ISSUANCE
        )
        postings.append((coalition_issuance, coalition_take))
    entry_id = await journal.post_entry(
        conn,
        kind=EntryKind.REVERSE,
        member_id=member_id,
        partner_id=partner_id,
        points=-points,
        occurred_at=now,
        order_id=order_id,
        related_entry_id=related_entry_id,
        postings=postings,
        coalition_points=-coalition_take,
    )
    if points == 0:
        return entry_id
    left = points
    if coalition_issuer is not None and coalition_lot_id is not None and coalition_take:
        await journal.move_lots(
            conn,
            entry_id=entry_id,
            member_id=member_id,
            kind=ConsumptionKind.REVERSAL,
            counterparty_partner_id=coalition_issuer,
            shares=[journal.LotShare(coalition_lot_id, coalition_issuer, coalition_take)],
            occurred_at=now,
        )
        left -= coalition_take
    if lot_id is not None:
        remaining = await LOT_REMAINING.fetchval(conn, id=lot_id, now=now)
        take = min(remaining or 0, left)
        await journal.move_lots(
            conn,
            entry_id=entry_id,
            member_id=member_id,
            kind=ConsumptionKind.REVERSAL,
            counterparty_partner_id=partner_id,
            shares=[journal.LotShare(lot_id, partner_id, take)],
            occurred_at=now,
        )
        left -= take
    clawed = await journal.spendable_lots(
        conn,
        member_id,
        left,
        now,
        include_pending=True,
        exclude_lots=[x for x in (lot_id, coalition_lot_id) if x is not None],
    )
    await journal.move_lots(
        conn,
        entry_id=entry_id,
        member_id=member_id,
        kind=ConsumptionKind.CLAWBACK,
        counterparty_partner_id=partner_id,
        shares=clawed,
        occurred_at=now,
    )
    left -= sum(s.points for s in clawed)
    if left > 0:
        await OPEN_DEBT.execute(conn, m=member_id, p=partner_id, entry=entry_id, points=left)
    await journal.change_wallet(conn, member_id, balance=-points, debt=left)
    return entry_id
