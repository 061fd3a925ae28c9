"""Spending points, shared by an immediate redemption and the capture of a hold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.ledger import accounts, journal
from services.ledger.models import AccountKind, ConsumptionKind, EntryKind
from services.ledger.policy import Policy, on_activity
from services.partners import service as partners
from shared.errors import DomainError
from shared.money import value_of_points
from shared.sql import DbConnection, Sql

REDEMPTION_EXISTS = Sql("SELECT 1 FROM redemptions WHERE partner_id = :p AND order_id = :o")
INSERT_REDEMPTION = Sql(
    "INSERT INTO redemptions (partner_id, order_id, member_id, points, value_amount, currency,"
    " redeem_price, entry_id, occurred_at, reward_id, quantity, voucher_code)"
    " VALUES (:p, :o, :m, :points, :value, :currency, :price, :entry, :at, :reward, :quantity,"
    " :voucher) RETURNING id"
)


async def refuse_duplicate_order(conn: DbConnection, partner_id: int, order_id: str) -> None:
    if await REDEMPTION_EXISTS.fetchval(conn, p=partner_id, o=order_id):
        raise DomainError.single(
            "DUPLICATE_ORDER", "a redemption with this orderId was already recorded", "orderId"
        )


async def reserve(
    conn: DbConnection, member_id: int, wallet: journal.WalletState, points: int, now: datetime
) -> list[journal.LotShare]:
    """The lots `points` would come from, first to expire first, or INSUFFICIENT_POINTS.

    The member's debt counts against them: available = free points of available lots - debt."""
    shares = await journal.spendable_lots(conn, member_id, points + wallet.debt, now)
    available = sum(s.points for s in shares) - wallet.debt
    if available < points:
        raise DomainError.single(
            "INSUFFICIENT_POINTS",
            f"the member has {max(available, 0)} points available, {points} asked",
            "points",
        )
    return first_points(shares, points)


def first_points(shares: list[journal.LotShare], points: int) -> list[journal.LotShare]:
    """The first `points` of the shares, in order (the rest stays in the lots)."""
    out, left = [], points
    for share in shares:
        if left == 0:
            break
        take = min(share.points, left)
        out.append(journal.LotShare(share.lot_id, share.issuing_partner_id, take))
        left -= take
    return out


async def spend(
    conn: DbConnection,
    *,
    partner_id: int,
    member_id: int,
    wallet: journal.WalletState,
    shares: list[journal.LotShare],
    order_id: str,
    now: datetime,
    policy: Policy,
    reward: tuple[int, int, str] | None = None,
) -> dict[str, Any]:
    """Posts the redemption of `shares` at the partner's redeem price in force now; `reward` is
    (reward id, quantity, voucher code) when the points bought a catalogue reward."""
    points = sum(s.points for s in shares)
    contract = await partners.contract_at(conn, partner_id, now)
    value = value_of_points(points, contract.redeem_price, contract.currency)
    redemption_account = await accounts.partner_account(conn, partner_id, AccountKind.PARTNER_REDEMPTION)
    entry_id = await journal.post_entry(
        conn,
        kind=EntryKind.REDEEM,
        member_id=member_id,
        partner_id=partner_id,
        points=-points,
        occurred_at=now,
        order_id=order_id,
        postings=[(wallet.account_id, -points), (redemption_account, points)],
    )
    await journal.move_lots(
        conn,
        entry_id=entry_id,
        member_id=member_id,
        kind=ConsumptionKind.REDEMPTION,
        counterparty_partner_id=partner_id,
        shares=shares,
        occurred_at=now,
    )
    await journal.change_wallet(conn, member_id, balance=-points)
    await on_activity(conn, policy, member_id, now)
    redemption_id = await INSERT_REDEMPTION.fetchval(
        conn,
        p=partner_id,
        o=order_id,
        m=member_id,
        points=points,
        value=value,
        currency=contract.currency,
        price=contract.redeem_price,
        entry=entry_id,
        at=now,
        reward=reward[0] if reward else None,
        quantity=reward[1] if reward else None,
        voucher=reward[2] if reward else None,
    )
    return {
        "redemption_id": redemption_id,
        "transaction_id": entry_id,
        "points": points,
        "value": {"amount": str(value), "currency": contract.currency},
    }
