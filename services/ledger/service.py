"""Moving points: earn, redeem, reverse a purchase, cancel a redemption.

Each operation is one transaction, runs under the member's wallet lock (taken before anything
else that touches the member's points), checks everything that can refuse it before it writes,
and is exactly-once per idempotency key (see `idempotency`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import accounts, journal
from services.ledger.idempotency import run_idempotent
from services.ledger.models import AccountKind, ConsumptionKind, EntryKind
from services.members import service as members
from services.partners import service as partners
from shared import clock
from shared.access import Principal
from shared.errors import DomainError, UserError, Validator
from shared.ids import from_global_id
from shared.money import (
    MAX_AMOUNT,
    Money,
    decimals_of,
    is_known_currency,
    minor_units,
    points_for,
    quantize_money,
    value_of_points,
)
from shared.settings import get_settings

MAX_KEY = 200
MAX_ORDER_ID = 200
MAX_POINTS = 10**12
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Outcome:
    """What a mutation answered: its result, or the errors the caller can fix."""

    result: dict[str, Any] | None
    errors: list[UserError]

    @classmethod
    def of(cls, response: dict[str, Any]) -> Outcome:
        return cls(
            result=response.get("ok"),
            errors=[UserError.from_dict(e) for e in response.get("errors", [])],
        )


def _check_common(v: Validator, idempotency_key: str, order_id: str | None) -> None:
    v.text(idempotency_key, "idempotencyKey", max_length=MAX_KEY)
    if order_id is not None:
        v.text(order_id, "orderId", max_length=MAX_ORDER_ID)


def check_money(v: Validator, money: Money, field: str, *, required_currency: str | None) -> bool:
    """Positive, in a known currency, with no more decimals than the currency has."""
    if not v.check(
        is_known_currency(money.currency),
        f"{field}.currency",
        "UNKNOWN_CURRENCY",
        f"{field}.currency {money.currency!r} is not a known ISO 4217 code",
    ):
        return False
    ok = v.check(
        money.amount > 0, f"{field}.amount", "INVALID_AMOUNT", f"{field}.amount must be greater than zero"
    )
    ok = ok and v.check(
        money.amount <= MAX_AMOUNT,
        f"{field}.amount",
        "INVALID_AMOUNT",
        f"{field}.amount must be at most {MAX_AMOUNT}",
    )
    ok = ok and v.check(
        decimals_of(money.amount) <= minor_units(money.currency),
        f"{field}.amount",
        "INVALID_AMOUNT",
        f"{field}.amount has more decimals than {money.currency} allows ({minor_units(money.currency)})",
    )
    if ok and required_currency is not None:
        ok = v.check(
            money.currency == required_currency,
            f"{field}.currency",
            "CURRENCY_MISMATCH",
            f"{field}.currency must be {required_currency}",
        )
    return ok


async def _member_for(session: AsyncSession, member_number: str, partner_id: int) -> members.MemberAtPartner:
    found = await members.member_at_partner(session, member_number, partner_id)
    if found is None:
        raise DomainError.single("MEMBER_NOT_FOUND", "no member has this number", "memberNumber")
    return found


# --- earn -------------------------------------------------------------------------------------

EARN_SQL = text(
    """
WITH ids AS (
  SELECT nextval(pg_get_serial_sequence('journal_entries', 'id')) AS entry_id,
         CASE WHEN CAST(:points AS bigint) > 0
              THEN nextval(pg_get_serial_sequence('lots', 'id')) END AS lot_id
), pur AS (
  INSERT INTO purchases (partner_id, order_id, member_id, amount, currency, points_earned,
                         entry_id, lot_id, occurred_at)
  SELECT CAST(:p AS bigint), CAST(:order_id AS text), CAST(:m AS bigint), CAST(:amount AS numeric),
         CAST(:currency AS text), CAST(:points AS bigint), entry_id, lot_id,
         CAST(:occurred AS timestamptz)
  FROM ids
  ON CONFLICT (partner_id, order_id) DO NOTHING
  RETURNING entry_id, lot_id
), e AS (
  INSERT INTO journal_entries (id, kind, member_id, partner_id, points, order_id, occurred_at)
  SELECT entry_id, 'EARN', CAST(:m AS bigint), CAST(:p AS bigint), CAST(:points AS bigint),
         CAST(:order_id AS text), CAST(:occurred AS timestamptz)
  FROM pur
), po AS (
  INSERT INTO postings (entry_id, account_id, amount)
  SELECT pur.entry_id, x.account_id, x.amount
  FROM pur, (VALUES (CAST(:issuance AS bigint), -CAST(:points AS bigint)),
                    ((SELECT account_id FROM wallets WHERE member_id = CAST(:m AS bigint)),
                     CAST(:points AS bigint))
            ) AS x(account_id, amount)
  WHERE CAST(:points AS bigint) > 0
), l AS (
  INSERT INTO lots (id, member_id, issuing_partner_id, earn_entry_id, points, remaining,
                    earned_at, available_at, expires_at)
  SELECT lot_id, CAST(:m AS bigint), CAST(:p AS bigint), entry_id, CAST(:points AS bigint),
         CAST(:points AS bigint), CAST(:occurred AS timestamptz), CAST(:available AS timestamptz),
         CAST(:expires AS timestamptz)
  FROM pur WHERE lot_id IS NOT NULL
), w AS (
  UPDATE wallets SET balance = balance + CAST(:points AS bigint)
  WHERE member_id = CAST(:m AS bigint) AND EXISTS (SELECT 1 FROM pur)
  RETURNING debt
)
SELECT pur.entry_id, pur.lot_id, (SELECT debt FROM w) AS debt FROM pur
"""
)


async def record_purchase(
    session: AsyncSession,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str,
    order_id: str,
    amount: Money,
    occurred_at: datetime | None = None,
) -> Outcome:
    partner_id = principal.require_partner("points:earn")
    partner = await partners.get_partner(session, partner_id)
    if partner is None:
        raise DomainError.single("PARTNER_NOT_FOUND", "the calling partner no longer exists", None)
    now = clock.now()
    v = Validator()
    _check_common(v, idempotency_key, order_id)
    members.check_member_number(v, member_number)
    check_money(v, amount, "amount", required_currency=partner.currency)
    expiry_months = get_settings().points_expiry_months
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
            v.check(
                clock.add_months(occurred_at, expiry_months) > now,
                "occurredAt",
                "TOO_OLD",
                "points for a purchase this old would already have expired",
            )
    v.raise_if_any()
    when = occurred_at or now
    request = {
        "member": member_number,
        "order": order_id,
        "amount": str(amount.amount),
        "currency": amount.currency,
        "occurred_at": occurred_at,
    }

    async def work() -> dict[str, Any]:
        found = await _member_for(session, member_number, partner_id)
        member_id = found.member_id
        points = points_for(amount.amount, partner.earn_rate, partner.earn_rounding)
        available_at = when + timedelta(days=partner.return_window_days)
        issuance = await accounts.partner_account(session, partner_id, AccountKind.PARTNER_ISSUANCE)
        row = (
            await session.execute(
                EARN_SQL,
                {
                    "p": partner_id,
                    "m": member_id,
                    "order_id": order_id,
                    "amount": amount.amount,
                    "currency": amount.currency,
                    "points": points,
                    "occurred": when,
                    "available": available_at,
                    "expires": clock.add_months(when, expiry_months),
                    "issuance": issuance,
                },
            )
        ).first()
        if row is None:
            raise DomainError.single(
                "DUPLICATE_ORDER", "a purchase with this orderId was already recorded", "orderId"
            )
        if not found.enrolled:  # presenting the card at the till is consent to be known here
            await members.link_member(session, member_id, partner_id)
        if row.debt:
            await journal.repay_debt(
                session,
                member_id=member_id,
                entry_id=row.entry_id,
                debt=row.debt,
                sources=[journal.LotShare(row.lot_id, partner_id, points)],
                occurred_at=now,
            )
        return {
            "transaction_id": row.entry_id,
            "points": points,
            "partner_id": partner_id,
            "occurred_at": when.isoformat(),
            "available_at": available_at.isoformat(),
        }

    return Outcome.of(
        await run_idempotent(
            session,
            client_id=principal.client_id,
            key=idempotency_key,
            operation="recordPurchase",
            request=request,
            work=work,
        )
    )


# --- redeem -----------------------------------------------------------------------------------


async def redeem_points(
    session: AsyncSession,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str,
    points: int,
    order_id: str,
) -> Outcome:
    partner_id = principal.require_partner("points:redeem")
    v = Validator()
    _check_common(v, idempotency_key, order_id)
    members.check_member_number(v, member_number)
    v.check(
        0 < points <= MAX_POINTS, "points", "INVALID_AMOUNT", f"points must be between 1 and {MAX_POINTS}"
    )
    v.raise_if_any()
    request = {"member": member_number, "order": order_id, "points": points}

    async def work() -> dict[str, Any]:
        now = clock.now()
        found = await _member_for(session, member_number, partner_id)
        wallet = await journal.lock_wallet(session, found.member_id)
        taken = await session.scalar(
            text("SELECT 1 FROM redemptions WHERE partner_id = :p AND order_id = :o"),
            {"p": partner_id, "o": order_id},
        )
        if taken:
            raise DomainError.single(
                "DUPLICATE_ORDER", "a redemption with this orderId was already recorded", "orderId"
            )
        shares = await journal.spendable_lots(session, found.member_id, points + wallet.debt, now)
        available = sum(s.points for s in shares) - wallet.debt
        if available < points:
            raise DomainError.single(
                "INSUFFICIENT_POINTS",
                f"the member has {max(available, 0)} points available, {points} asked",
                "points",
            )
        shares = _first_points(shares, points)
        if not found.enrolled:
            await members.link_member(session, found.member_id, partner_id)
        contract = await partners.contract_at(session, partner_id, now)
        value = value_of_points(points, contract.redeem_price, contract.currency)
        redemption_account = await accounts.partner_account(
            session, partner_id, AccountKind.PARTNER_REDEMPTION
        )
        entry_id = await journal.post_entry(
            session,
            kind=EntryKind.REDEEM,
            member_id=found.member_id,
            partner_id=partner_id,
            points=-points,
            occurred_at=now,
            order_id=order_id,
            postings=[(wallet.account_id, -points), (redemption_account, points)],
        )
        await journal.move_lots(
            session,
            entry_id=entry_id,
            member_id=found.member_id,
            kind=ConsumptionKind.REDEMPTION,
            counterparty_partner_id=partner_id,
            shares=shares,
            occurred_at=now,
        )
        await journal.change_wallet(session, found.member_id, balance=-points)
        redemption_id = await session.scalar(
            text(
                "INSERT INTO redemptions (partner_id, order_id, member_id, points, value_amount,"
                " currency, redeem_price, entry_id, occurred_at)"
                " VALUES (:p, :o, :m, :points, :value, :cur, :price, :e, :at) RETURNING id"
            ),
            {
                "p": partner_id,
                "o": order_id,
                "m": found.member_id,
                "points": points,
                "value": value,
                "cur": contract.currency,
                "price": contract.redeem_price,
                "e": entry_id,
                "at": now,
            },
        )
        return {
            "redemption_id": redemption_id,
            "transaction_id": entry_id,
            "points": points,
            "value": {"amount": str(value), "currency": contract.currency},
        }

    return Outcome.of(
        await run_idempotent(
            session,
            client_id=principal.client_id,
            key=idempotency_key,
            operation="redeemPoints",
            request=request,
            work=work,
        )
    )


def _first_points(shares: list[journal.LotShare], points: int) -> list[journal.LotShare]:
    """The first `points` of the shares, in order (the rest stays in the lots)."""
    out, left = [], points
    for share in shares:
        if left == 0:
            break
        take = min(share.points, left)
        out.append(journal.LotShare(share.lot_id, share.issuing_partner_id, take))
        left -= take
    return out


# --- reverse a purchase -------------------------------------------------------------------------


async def reverse_purchase(
    session: AsyncSession,
    principal: Principal,
    *,
    idempotency_key: str,
    order_id: str,
    amount: Money | None,
) -> Outcome:
    """A full or partial refund takes back the points pro rata, cumulatively floored.

    Points still in the purchase's lot come from it; points already spent are clawed back from the
    member's other points (available first, then pending); what is left becomes a debt that later
    credits repay, and until then the member's balance is negative.
    """
    partner_id = principal.require_partner("points:reverse")
    v = Validator()
    _check_common(v, idempotency_key, order_id)
    if amount is not None:
        check_money(v, amount, "amount", required_currency=None)
    v.raise_if_any()
    request = {
        "order": order_id,
        "amount": str(amount.amount) if amount else None,
        "currency": amount.currency if amount else None,
    }

    async def work() -> dict[str, Any]:
        now = clock.now()
        member_id = await session.scalar(
            text("SELECT member_id FROM purchases WHERE partner_id = :p AND order_id = :o"),
            {"p": partner_id, "o": order_id},
        )
        if member_id is None:
            raise DomainError.single("PURCHASE_NOT_FOUND", "no purchase has this orderId", "orderId")
        wallet = await journal.lock_wallet(session, member_id)
        purchase = (
            await session.execute(
                text(
                    "SELECT id, amount, currency, points_earned, points_reversed, amount_reversed,"
                    " entry_id, lot_id FROM purchases WHERE partner_id = :p AND order_id = :o"
                ),
                {"p": partner_id, "o": order_id},
            )
        ).one()
        refund = quantize_money(
            amount.amount if amount else purchase.amount - purchase.amount_reversed,
            purchase.currency,
        )
        if amount is not None and amount.currency != purchase.currency:
            raise DomainError.single(
                "CURRENCY_MISMATCH", f"amount.currency must be {purchase.currency}", "amount.currency"
            )
        if refund <= 0:
            raise DomainError.single("ALREADY_REVERSED", "this purchase is fully refunded", "orderId")
        refunded = purchase.amount_reversed + refund
        if refunded > purchase.amount:
            raise DomainError.single(
                "REFUND_EXCEEDS_PURCHASE",
                f"only {purchase.amount - purchase.amount_reversed} {purchase.currency} of this "
                "purchase is left to refund",
                "amount.amount",
            )
        total_reversed = (purchase.points_earned * refunded / purchase.amount).to_integral_value(
            rounding=ROUND_FLOOR
        )
        points = int(total_reversed) - purchase.points_reversed
        entry_id = await _reverse_points(
            session,
            partner_id=partner_id,
            member_id=member_id,
            wallet=wallet,
            lot_id=purchase.lot_id,
            points=points,
            order_id=order_id,
            related_entry_id=purchase.entry_id,
            now=now,
        )
        await session.execute(
            text(
                "UPDATE purchases SET points_reversed = points_reversed + :pts,"
                " amount_reversed = amount_reversed + :amt WHERE id = :id"
            ),
            {"pts": points, "amt": refund, "id": purchase.id},
        )
        return {
            "reversal_id": entry_id,
            "points": points,
            "refunded": {"amount": str(refund), "currency": purchase.currency},
        }

    return Outcome.of(
        await run_idempotent(
            session,
            client_id=principal.client_id,
            key=idempotency_key,
            operation="reversePurchase",
            request=request,
            work=work,
        )
    )


async def _reverse_points(
    session: AsyncSession,
    *,
    partner_id: int,
    member_id: int,
    wallet: journal.WalletState,
    lot_id: int | None,
    points: int,
    order_id: str,
    related_entry_id: int,
    now: datetime,
) -> int:
    issuance = await accounts.partner_account(session, partner_id, AccountKind.PARTNER_ISSUANCE)
    entry_id = await journal.post_entry(
        session,
        kind=EntryKind.REVERSE,
        member_id=member_id,
        partner_id=partner_id,
        points=-points,
        occurred_at=now,
        order_id=order_id,
        related_entry_id=related_entry_id,
        postings=[(wallet.account_id, -points), (issuance, points)],
    )
    if points == 0:
        return entry_id
    left = points
    if lot_id is not None:
        own = (
            await session.execute(
                text(
                    "SELECT remaining FROM lots WHERE id = :id AND expired_at IS NULL AND expires_at > :now"
                ),
                {"id": lot_id, "now": now},
            )
        ).first()
        take = min(own.remaining, left) if own else 0
        await journal.move_lots(
            session,
            entry_id=entry_id,
            member_id=member_id,
            kind=ConsumptionKind.REVERSAL,
            counterparty_partner_id=partner_id,
            shares=[journal.LotShare(lot_id, partner_id, take)],
            occurred_at=now,
        )
        left -= take
    clawed = await journal.spendable_lots(
        session, member_id, left, now, include_pending=True, exclude_lot=lot_id
    )
    await journal.move_lots(
        session,
        entry_id=entry_id,
        member_id=member_id,
        kind=ConsumptionKind.CLAWBACK,
        counterparty_partner_id=partner_id,
        shares=clawed,
        occurred_at=now,
    )
    left -= sum(s.points for s in clawed)
    if left > 0:
        await session.execute(
            text(
                "INSERT INTO member_debts (member_id, creditor_partner_id, entry_id, points,"
                " remaining) VALUES (:m, :p, :e, :pts, :pts)"
            ),
            {"m": member_id, "p": partner_id, "e": entry_id, "pts": left},
        )
    await journal.change_wallet(session, member_id, balance=-points, debt=left)
    return entry_id


# --- cancel a redemption ------------------------------------------------------------------------


async def cancel_redemption(
    session: AsyncSession,
    principal: Principal,
    *,
    idempotency_key: str,
    redemption_id: str,
) -> Outcome:
    """Puts the points back into the lots they came from; a lot already past its expiry expires
    again at once (its points go to breakage, not back to the member)."""
    partner_id = principal.require_partner("points:redeem")
    v = Validator()
    _check_common(v, idempotency_key, None)
    decoded = from_global_id(redemption_id, "Redemption")
    v.check(decoded is not None, "redemptionId", "INVALID_ID", "redemptionId is not a Redemption id")
    v.raise_if_any()
    assert decoded is not None
    local_id = decoded[1]
    request = {"redemption": local_id}

    async def work() -> dict[str, Any]:
        now = clock.now()
        member_id = await session.scalar(
            text("SELECT member_id FROM redemptions WHERE id = :id AND partner_id = :p"),
            {"id": local_id, "p": partner_id},
        )
        if member_id is None:  # another partner's redemption looks exactly like none
            raise DomainError.single("REDEMPTION_NOT_FOUND", "no such redemption", "redemptionId")
        wallet = await journal.lock_wallet(session, member_id)
        redemption = (
            await session.execute(
                text("SELECT points, entry_id, order_id, cancel_entry_id FROM redemptions WHERE id = :id"),
                {"id": local_id},
            )
        ).one()
        if redemption.cancel_entry_id is not None:
            raise DomainError.single(
                "ALREADY_CANCELLED", "this redemption was already cancelled", "redemptionId"
            )
        consumed = (
            await session.execute(
                text(
                    "SELECT c.lot_id, c.issuing_partner_id, c.points, l.expires_at <= :now"
                    " OR l.expired_at IS NOT NULL AS expired FROM lot_consumptions c"
                    " JOIN lots l ON l.id = c.lot_id WHERE c.entry_id = :e ORDER BY c.id"
                ),
                {"e": redemption.entry_id, "now": now},
            )
        ).all()
        redemption_account = await accounts.partner_account(
            session, partner_id, AccountKind.PARTNER_REDEMPTION
        )
        points = redemption.points
        entry_id = await journal.post_entry(
            session,
            kind=EntryKind.CANCEL_REDEMPTION,
            member_id=member_id,
            partner_id=partner_id,
            points=points,
            occurred_at=now,
            order_id=redemption.order_id,
            related_entry_id=redemption.entry_id,
            postings=[(redemption_account, -points), (wallet.account_id, points)],
        )
        restored = [journal.LotShare(c.lot_id, c.issuing_partner_id, c.points) for c in consumed]
        await journal.move_lots(
            session,
            entry_id=entry_id,
            member_id=member_id,
            kind=ConsumptionKind.REDEMPTION,
            counterparty_partner_id=partner_id,
            shares=[journal.LotShare(s.lot_id, s.issuing_partner_id, -s.points) for s in restored],
            occurred_at=now,
        )
        await journal.change_wallet(session, member_id, balance=points)
        await session.execute(
            text("UPDATE redemptions SET cancel_entry_id = :e WHERE id = :id"),
            {"e": entry_id, "id": local_id},
        )
        expired = [s for s, c in zip(restored, consumed, strict=True) if c.expired]
        live = [s for s, c in zip(restored, consumed, strict=True) if not c.expired]
        if expired:
            await journal.expire_lots_now(
                session,
                member_id=member_id,
                wallet_account_id=wallet.account_id,
                lots=expired,
                occurred_at=now,
            )
        if wallet.debt:
            await journal.repay_debt(
                session,
                member_id=member_id,
                entry_id=entry_id,
                debt=wallet.debt,
                sources=live,
                occurred_at=now,
            )
        return {"redemption_id": local_id, "cancellation_id": entry_id, "points": points}

    return Outcome.of(
        await run_idempotent(
            session,
            client_id=principal.client_id,
            key=idempotency_key,
            operation="cancelRedemption",
            request=request,
            work=work,
        )
    )


__all__ = [
    "Outcome",
    "cancel_redemption",
    "check_money",
    "record_purchase",
    "redeem_points",
    "reverse_purchase",
]
