"""Buying a catalogue reward with points: stock, per-member limits and a voucher, in one go.

Checks that can refuse (on sale, member limit, enough points) come before any write; the stock
decrement is a guarded UPDATE that writes nothing when it refuses; the spend itself is the same as
any redemption, so settlement sees a reward like any other redemption at the partner.

A member may buy a reward from their own app (a member token): with their own points only (a
`memberNumber`, if sent, must be their own; another is MEMBER_NOT_FOUND), at the reward's partner,
which is charged as if it had sold the reward at its till. Buying in the app is the member's own
act, so it needs no link to the partner and creates none (the partner gets the redemption to
honour the voucher, not sight of the member), and needs no spend code. Their idempotency keys
are scoped to the member as well as the app: one app serves many members.
"""

from __future__ import annotations

from typing import Any

from services.ledger import events, journal, live, policy, spending
from services.ledger.idempotency import run_idempotent
from services.ledger.live import BalanceChangeReason
from services.ledger.outcomes import Outcome, check_common, linked_member
from services.members import service as members
from services.members import spend_codes
from services.partners import catalog
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator
from shared.ids import from_global_id, new_voucher_code
from shared.outbox import EventType, record_event
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
    member_number: str | None,
    reward_id: str,
    quantity: int = 1,
    member_code: str | None = None,
) -> Outcome:
    by_member = principal.member_id is not None
    own_member = principal.require_member() if by_member else None
    partner_id = None if by_member else principal.require_partner("points:redeem")
    v = Validator()
    check_common(v, idempotency_key, None)
    if not by_member or member_number is not None:
        members.check_member_number(v, member_number or "")
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
        if own_member is not None:
            member_id = own_member
            if member_number is not None and member_number != await members.MEMBER_NUMBER.fetchval(
                conn, id=own_member
            ):
                raise members.member_not_found()  # a member spends only their own points
        else:
            assert member_number is not None
            member_id = await linked_member(conn, member_number, partner_id)
        wallet = await journal.lock_wallet(conn, member_id)
        reward = await catalog.reward_for_sale(conn, local_id, partner_id, now)
        code_id = await spend_codes.check(conn, member_id, member_code, by_member=by_member)
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
        number = await events.member_number(conn, member_id, member_number)
        spent = await spending.spend(
            conn,
            partner_id=reward.partner_id,
            member_id=member_id,
            wallet=wallet,
            shares=shares,
            order_id=f"voucher:{voucher}",
            now=now,
            policy=await policy.current(db, conn),
            reward=(local_id, quantity, voucher),
            member_number=number,
        )
        await record_event(  # after points.redeemed: the points went, and this is what they bought
            conn,
            EventType.REWARD_REDEEMED,
            events.reward_redeemed(
                member_number=number,
                partner_id=reward.partner_id,
                reward_id=local_id,
                reward_name=reward.name,
                points=points,
                quantity=quantity,
                entry_id=spent["transaction_id"],
                voucher_code=voucher,
            ),
            member_id=member_id,
            partner_ids=[reward.partner_id],
            occurred_at=now,
        )
        await spend_codes.consume(conn, code_id)
        await live.notify(conn, member_id, BalanceChangeReason.REDEEM, now)
        return {**spent, "voucher_code": voucher, "quantity": quantity}

    # One member app serves many members: their keys must not meet.
    client_id = principal.client_id if own_member is None else f"{principal.client_id}#member:{own_member}"
    return Outcome.of(
        await run_idempotent(
            db,
            client_id=client_id,
            key=idempotency_key,
            operation="redeemReward",
            request={"member": member_number, "reward": local_id, "quantity": quantity},
            work=work,
        )
    )
