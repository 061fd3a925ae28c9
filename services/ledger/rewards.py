"""Buying a catalogue reward with points: stock, per-member limits and a voucher, in one go.

Checks that can refuse (on sale, member limit, enough points) come before any write; the stock
decrement is a guarded UPDATE that writes nothing when it refuses; the spend itself is the same as
any redemption, so settlement sees a reward like any other redemption at the partner.
"""

from __future__ import annotations

from typing import Any

from services.ledger import journal, live, policy, spending
from services.ledger.idempotency import run_idempotent
from services.ledger.live import BalanceChangeReason
from services.ledger.outcomes import Outcome, check_common, linked_member
from services.members import service as members
from services.partners import catalog
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator
from shared.ids import from_global_id, new_voucher_code
from shared.sql import DbConnection, Sql

MAX_QUANTITY = 100

ALREADY_BOUGHT = Sql(
    "SELECT COALESCE(SUM(quantity), 0) FROM redemptions"
    " WHERE reward_id = :reward AND member_id = :m AND cancel_entry_id IS NULL"
)


async def redeem_reward(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str,
    reward_id: str,
    quantity: int = 1,
) -> Outcome:
    partner_id = principal.require_partner("points:redeem")
    v = Validator()
    check_common(v, idempotency_key, None)
    members.check_member_number(v, member_number)
    decoded = from_global_id(reward_id, "Reward")
    v.check(decoded is not None, "rewardId", UserErrorCode.INVALID_ID, "rewardId is not a Reward id")
    v.check(
        0 < quantity <= MAX_QUANTITY,
        "quantity",
        UserErrorCode.INVALID_AMOUNT,
        f"quantity must be between 1 and {MAX_QUANTITY}",
    )
    v.raise_if_any()
    assert decoded is not None
    local_id = decoded[1]

    async def work(conn: DbConnection) -> dict[str, Any]:
        now = clock.now()
        member_id = await linked_member(conn, member_number, partner_id)
        wallet = await journal.lock_wallet(conn, member_id)
        reward = await catalog.reward_for_sale(conn, local_id, partner_id, now)
        if reward.max_per_member is not None:
            bought = await ALREADY_BOUGHT.fetchval(conn, reward=local_id, m=member_id)
            if bought + quantity > reward.max_per_member:
                raise DomainError.single(
                    UserErrorCode.LIMIT_REACHED,
                    f"a member may have {reward.max_per_member} of this reward; this one has {bought}",
                    "quantity",
                )
        points = reward.points_cost * quantity
        shares = await spending.reserve(conn, member_id, wallet, points, now)
        await catalog.take_stock(conn, reward, quantity)
        voucher = new_voucher_code()
        spent = await spending.spend(
            conn,
            partner_id=partner_id,
            member_id=member_id,
            wallet=wallet,
            shares=shares,
            order_id=f"voucher:{voucher}",
            now=now,
            policy=await policy.current(db, conn),
            reward=(local_id, quantity, voucher),
        )
        await live.notify(conn, member_id, BalanceChangeReason.REDEEM, now)
        return {**spent, "voucher_code": voucher, "quantity": quantity}

    return Outcome.of(
        await run_idempotent(
            db,
            client_id=principal.client_id,
            key=idempotency_key,
            operation="redeemReward",
            request={"member": member_number, "reward": local_id, "quantity": quantity},
            work=work,
        )
    )
