"""Spending points: an immediate redemption, and what the capture of a hold and the purchase of a
reward share with it. Spending needs the member to be linked to the partner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.ledger import accounts, events, journal, live, policy
from services.ledger.idempotency import run_idempotent
from services.ledger.live import BalanceChangeReason
from services.ledger.models import AccountKind, ConsumptionKind, EntryKind
from services.ledger.outcomes import MAX_POINTS, Outcome, check_common, linked_member
from services.ledger.policy import Policy, on_activity
from services.members import service as members
from services.members import spend_codes
from services.partners import service as partners
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator
from shared.money import value_of_points
from shared.outbox import EventType, record_event
from shared.sql import DbConnection, Sql

REDEMPTION_EXISTS = Sql("SELECT 1 FROM redemptions WHERE partner_id = :p AND order_id = :o")
OPEN_HOLD_EXISTS = Sql(
    "SELECT 1 FROM holds WHERE partner_id = :p AND order_id = :o AND status = 'ACTIVE' AND expires_at > :now"
)
INSERT_REDEMPTION = Sql(
    "INSERT INTO redemptions (partner_id, order_id, member_id, points, value_amount, currency,"
    " redeem_price, entry_id, occurred_at, reward_id, quantity, voucher_code)"
    " VALUES (:p, :o, :m, :points, :value, :currency, :price, :entry, :at, :reward, :quantity,"
    " :voucher) RETURNING id"
)


async def refuse_duplicate_order(
    conn: DbConnection, partner_id: int, order_id: str, *, open_holds_too: bool = True
) -> None:
    """One order, one redemption: refused when one is recorded, and (for a new redemption or
    authorization) while an open authorization holds the order id, whose capture would record
    it: redeeming it directly would leave that capture nowhere to go."""
    if await REDEMPTION_EXISTS.fetchval(conn, p=partner_id, o=order_id):
        raise DomainError.single(
            UserErrorCode.DUPLICATE_ORDER, "a redemption with this orderId was already recorded", "orderId"
        )
    if open_holds_too and await OPEN_HOLD_EXISTS.fetchval(conn, p=partner_id, o=order_id, now=clock.now()):
        raise DomainError.single(
            UserErrorCode.DUPLICATE_ORDER,
            "an open authorization holds this orderId: capture or void it instead",
            "orderId",
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
            UserErrorCode.INSUFFICIENT_POINTS,
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
    member_number: str | None = None,
) -> dict[str, Any]:
    """Posts the redemption of `shares` at the partner's redeem price in force now, and its
    points.redeemed event; `reward` is (reward id, quantity, voucher code) when the points bought
    a catalogue reward. The caller's checks that can refuse are all behind it: the event is
    written here, in the spend's transaction. `member_number`: when the caller has it (else one
    lookup, for the event)."""
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
    await record_event(
        conn,
        EventType.POINTS_REDEEMED,
        events.points_redeemed(
            member_number=await events.member_number(conn, member_id, member_number),
            partner_id=partner_id,
            entry_id=entry_id,
            redemption_id=redemption_id,
            points=points,
            order_id=order_id,
        ),
        member_id=member_id,
        partner_ids=[partner_id],
        occurred_at=now,
    )
    return {
        "redemption_id": redemption_id,
        "transaction_id": entry_id,
        "points": points,
        "value": {"amount": str(value), "currency": contract.currency},
    }


async def redeem_points(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str,
    points: int,
    order_id: str,
    member_code: str | None = None,
) -> Outcome:
    """Spends available points first to expire first; each lot's share is recorded with its
    issuer, which is what settlement prices. `member_code` is the member's one-time consent code
    (`services/members/spend_codes.py`); it is not part of the request an idempotency key names."""
    partner_id = principal.require_partner("points:redeem")
    v = Validator()
    check_common(v, idempotency_key, order_id)
    members.check_member_number(v, member_number)
    v.check(
        0 < points <= MAX_POINTS,
        "points",
        UserErrorCode.INVALID_AMOUNT,
        f"points must be between 1 and {MAX_POINTS}",
    )
    v.raise_if_any()
    request = {"member": member_number, "order": order_id, "points": points}

    async def work(conn: DbConnection) -> dict[str, Any]:
        now = clock.now()
        member_id = await linked_member(conn, member_number, partner_id)
        wallet = await journal.lock_wallet(conn, member_id)
        await refuse_duplicate_order(conn, partner_id, order_id)
        code_id = await spend_codes.check(conn, member_id, member_code)
        shares = await reserve(conn, member_id, wallet, points, now)
        spent = await spend(
            conn,
            partner_id=partner_id,
            member_id=member_id,
            wallet=wallet,
            shares=shares,
            order_id=order_id,
            now=now,
            policy=await policy.current(db, conn),
            member_number=member_number,
        )
        await spend_codes.consume(conn, code_id)
        await live.notify(conn, member_id, BalanceChangeReason.REDEEM, now)
        return spent

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
