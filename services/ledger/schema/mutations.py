"""The ledger's mutations: moving points, and the coalition's expiry policy (admins).

Each calls the ledger's front door (`services.ledger.service`) and turns its outcome into a
payload: problems the caller can fix become `userErrors`, whether the service found them before
its transaction (bad input) or inside it (not enough points).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated

import strawberry

from services.ledger import service
from services.ledger.models import ExpiryMode
from services.ledger.schema.inputs import (
    AuthorizeRedemptionInput,
    AuthorizeRedemptionPayload,
    CancelRedemptionInput,
    CancelRedemptionPayload,
    CaptureRedemptionInput,
    RecordPurchaseInput,
    RecordPurchasePayload,
    RecordPurchasesInput,
    RecordPurchasesPayload,
    RedeemPointsInput,
    RedeemPointsPayload,
    RedeemRewardInput,
    ReversePurchaseInput,
    ReversePurchasePayload,
    UpdateExpiryPolicyInput,
    UpdateExpiryPolicyPayload,
    VoidRedemptionInput,
)
from services.ledger.schema.types import (
    Authorization,
    ExpiryPolicy,
    Reversal,
    earn_transaction,
    redemption_of,
)
from shared.access import MEMBER_SCOPE
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import GraphQLInfo, Money, user_errors
from shared.ids import to_global_id
from shared.operations import INPUT, KEY_CODES, MEMBER_CODES, Access, admin, mutation, partner


async def _outcome(operation: Awaitable[service.Outcome]) -> service.Outcome:
    """The service's answer; input refused before any transaction becomes userErrors too."""
    try:
        return await operation
    except DomainError as exc:
        return service.Outcome(result=None, errors=exc.errors)


EARN_CODES = (
    *KEY_CODES,
    *MEMBER_CODES,
    UserErrorCode.UNKNOWN_CURRENCY,
    UserErrorCode.INVALID_AMOUNT,
    UserErrorCode.CURRENCY_MISMATCH,
    UserErrorCode.IN_FUTURE,
    UserErrorCode.TOO_OLD,
    UserErrorCode.DUPLICATE_ORDER,
    UserErrorCode.PARTNER_NOT_FOUND,
)


def _purchase_payload(outcome: service.Outcome, order_id: str) -> RecordPurchasePayload:
    if outcome.result is None:
        return RecordPurchasePayload(user_errors=user_errors(outcome.errors))
    return RecordPurchasePayload(
        transaction=earn_transaction(outcome.result, order_id), points_earned=outcome.result["points"]
    )


# What every spend of a member's points can answer, beyond its own input checks.
SPEND_CODES = (
    *KEY_CODES,
    *MEMBER_CODES,
    UserErrorCode.INVALID_AMOUNT,
    UserErrorCode.INSUFFICIENT_POINTS,
    UserErrorCode.MEMBER_CODE_REQUIRED,
    UserErrorCode.MEMBER_CODE_INVALID,
)
# redeemReward: a partner at its till, or the member in their app.
REWARD_BUYERS = Access(
    "partner credentials with the scope `points:redeem`, acting as the calling partner (for its"
    " linked members); or the member's own token (scope `member`), for their own points",
    ("points:redeem", MEMBER_SCOPE),
)
HOLD_CODES = (
    *KEY_CODES,
    UserErrorCode.INVALID_ID,
    UserErrorCode.AUTHORIZATION_NOT_FOUND,
    UserErrorCode.AUTHORIZATION_NOT_ACTIVE,
)


@strawberry.type
class LedgerMutation:
    @mutation(
        "Points for a purchase at the calling partner: earnRate times amount, rounded once, pending until"
        " the return window has passed. Exactly once per idempotencyKey.",
        access=partner("points:earn"),
        codes=EARN_CODES,
    )
    async def record_purchase(
        self, info: GraphQLInfo, input: Annotated[RecordPurchaseInput, INPUT]
    ) -> RecordPurchasePayload:
        outcome = await _outcome(
            service.record_purchase(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                member_number=input.member_number,
                order_id=input.order_id,
                amount=input.amount.to_domain(),
                occurred_at=input.occurred_at,
            )
        )
        return _purchase_payload(outcome, input.order_id)

    @mutation(
        "Many purchases at the calling partner at once (a till's backlog, a day's sales): each earns"
        " exactly as recordPurchase would earn it, with its own idempotencyKey and its own answer, in"
        " input order; one bad purchase fails only itself. Written set-based: up to 1,000 purchases"
        " cost a few statements, not two each.",
        access=partner("points:earn"),
        codes=(*EARN_CODES, UserErrorCode.BATCH_TOO_LARGE, UserErrorCode.LOOKUP_LIMIT_REACHED),
    )
    async def record_purchases(
        self, info: GraphQLInfo, input: Annotated[RecordPurchasesInput, INPUT]
    ) -> RecordPurchasesPayload:
        items = [
            service.PurchaseItem(
                idempotency_key=p.idempotency_key,
                member_number=p.member_number,
                order_id=p.order_id,
                amount=p.amount.to_domain(),
                occurred_at=p.occurred_at,
            )
            for p in input.purchases
        ]
        try:
            outcomes = await service.record_purchases(info.context.db, info.context.principal, items)
        except DomainError as exc:
            return RecordPurchasesPayload(user_errors=user_errors(exc.errors))
        return RecordPurchasesPayload(
            results=[_purchase_payload(o, p.order_id) for o, p in zip(outcomes, items, strict=True)]
        )

    @mutation(
        "Spend a linked member's available points at the calling partner now, first to expire first."
        " Exactly once per idempotencyKey.",
        access=partner("points:redeem"),
        codes=(*SPEND_CODES, UserErrorCode.DUPLICATE_ORDER),
    )
    async def redeem_points(
        self, info: GraphQLInfo, input: Annotated[RedeemPointsInput, INPUT]
    ) -> RedeemPointsPayload:
        outcome = await _outcome(
            service.redeem_points(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                member_number=input.member_number,
                points=input.points,
                order_id=input.order_id,
                member_code=input.member_code,
            )
        )
        if outcome.result is None:
            return RedeemPointsPayload(user_errors=user_errors(outcome.errors))
        return RedeemPointsPayload(redemption=redemption_of(outcome.result))

    @mutation(
        "Refund all or part of one of the calling partner's purchases: its points are taken back, pro"
        " rata and cumulatively floored; points already spent come from the member's other points,"
        " and what is still missing becomes a debt later earns repay. Exactly once per idempotencyKey.",
        access=partner("points:reverse"),
        codes=(
            *KEY_CODES,
            UserErrorCode.UNKNOWN_CURRENCY,
            UserErrorCode.INVALID_AMOUNT,
            UserErrorCode.PURCHASE_NOT_FOUND,
            UserErrorCode.CURRENCY_MISMATCH,
            UserErrorCode.ALREADY_REVERSED,
            UserErrorCode.REFUND_EXCEEDS_PURCHASE,
        ),
    )
    async def reverse_purchase(
        self, info: GraphQLInfo, input: Annotated[ReversePurchaseInput, INPUT]
    ) -> ReversePurchasePayload:
        outcome = await _outcome(
            service.reverse_purchase(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                order_id=input.order_id,
                amount=input.amount.to_domain() if input.amount else None,
            )
        )
        if outcome.result is None:
            return ReversePurchasePayload(user_errors=user_errors(outcome.errors))
        r = outcome.result
        return ReversePurchasePayload(
            reversal=Reversal(
                id=strawberry.ID(to_global_id("Reversal", r["reversal_id"])),
                points=r["points"],
                refunded=Money.of(r["refunded"]),
            )
        )

    @mutation(
        "Undo one of the calling partner's redemptions: the points go back to their lots (a reward's"
        " stock comes back, its voucher is void). Exactly once per idempotencyKey.",
        access=partner("points:redeem"),
        codes=(
            *KEY_CODES,
            UserErrorCode.INVALID_ID,
            UserErrorCode.REDEMPTION_NOT_FOUND,
            UserErrorCode.ALREADY_CANCELLED,
        ),
    )
    async def cancel_redemption(
        self, info: GraphQLInfo, input: Annotated[CancelRedemptionInput, INPUT]
    ) -> CancelRedemptionPayload:
        outcome = await _outcome(
            service.cancel_redemption(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                redemption_id=str(input.redemption_id),
            )
        )
        if outcome.result is None:
            return CancelRedemptionPayload(user_errors=user_errors(outcome.errors))
        r = outcome.result
        return CancelRedemptionPayload(
            redemption_id=strawberry.ID(to_global_id("Redemption", r["redemption_id"])),
            points_restored=r["points"],
        )

    @mutation(
        "Hold a linked member's points at the calling partner's till: they leave `available` until"
        " captured, voided or expired. Exactly once per idempotencyKey.",
        access=partner("points:redeem"),
        codes=(*SPEND_CODES, UserErrorCode.INVALID_DURATION, UserErrorCode.DUPLICATE_ORDER),
    )
    async def authorize_redemption(
        self, info: GraphQLInfo, input: Annotated[AuthorizeRedemptionInput, INPUT]
    ) -> AuthorizeRedemptionPayload:
        outcome = await _outcome(
            service.authorize_redemption(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                member_number=input.member_number,
                points=input.points,
                order_id=input.order_id,
                expires_in=input.expires_in,
                member_code=input.member_code,
            )
        )
        if outcome.result is None:
            return AuthorizeRedemptionPayload(user_errors=user_errors(outcome.errors))
        return AuthorizeRedemptionPayload(authorization=Authorization.of(outcome.result))

    @mutation(
        "Spend all or part of one of the calling partner's active holds as one redemption; the rest is"
        " released. Exactly once per idempotencyKey.",
        access=partner("points:redeem"),
        codes=(*HOLD_CODES, UserErrorCode.INVALID_AMOUNT, UserErrorCode.DUPLICATE_ORDER),
    )
    async def capture_redemption(
        self, info: GraphQLInfo, input: Annotated[CaptureRedemptionInput, INPUT]
    ) -> RedeemPointsPayload:
        outcome = await _outcome(
            service.capture_redemption(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                authorization_id=str(input.authorization_id),
                points=input.points,
            )
        )
        if outcome.result is None:
            return RedeemPointsPayload(user_errors=user_errors(outcome.errors))
        return RedeemPointsPayload(redemption=redemption_of(outcome.result))

    @mutation(
        "Release one of the calling partner's active holds without spending it. Exactly once per"
        " idempotencyKey.",
        access=partner("points:redeem"),
        codes=HOLD_CODES,
    )
    async def void_redemption(
        self, info: GraphQLInfo, input: Annotated[VoidRedemptionInput, INPUT]
    ) -> AuthorizeRedemptionPayload:
        outcome = await _outcome(
            service.void_redemption(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                authorization_id=str(input.authorization_id),
            )
        )
        if outcome.result is None:
            return AuthorizeRedemptionPayload(user_errors=user_errors(outcome.errors))
        return AuthorizeRedemptionPayload(authorization=Authorization.of(outcome.result))

    @mutation(
        "A linked member buys one of the calling partner's rewards with points, or a member buys a"
        " reward of any partner with their own points in their app: the redemption carries a voucher"
        " code. Exactly once per idempotencyKey.",
        access=REWARD_BUYERS,
        codes=(
            *SPEND_CODES,
            UserErrorCode.INVALID_ID,
            UserErrorCode.REWARD_NOT_FOUND,
            UserErrorCode.REWARD_NOT_AVAILABLE,
            UserErrorCode.LIMIT_REACHED,
            UserErrorCode.OUT_OF_STOCK,
        ),
    )
    async def redeem_reward(
        self, info: GraphQLInfo, input: Annotated[RedeemRewardInput, INPUT]
    ) -> RedeemPointsPayload:
        outcome = await _outcome(
            service.redeem_reward(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                member_number=input.member_number,
                reward_id=str(input.reward_id),
                quantity=input.quantity,
                member_code=input.member_code,
            )
        )
        if outcome.result is None:
            return RedeemPointsPayload(user_errors=user_errors(outcome.errors))
        return RedeemPointsPayload(redemption=redemption_of(outcome.result))

    @mutation(
        "Change the coalition's expiry policy (audit-logged). It applies to points earned and"
        " activity from now on; points already earned keep their expiry.",
        access=admin("admin:partners"),
        codes=(UserErrorCode.INVALID_AMOUNT,),
    )
    async def update_expiry_policy(
        self, info: GraphQLInfo, input: Annotated[UpdateExpiryPolicyInput, INPUT]
    ) -> UpdateExpiryPolicyPayload:
        try:
            updated = await service.update_expiry_policy(
                info.context.db, info.context.principal, months=input.months, mode=input.mode.value
            )
        except DomainError as exc:
            return UpdateExpiryPolicyPayload(user_errors=user_errors(exc.errors))
        return UpdateExpiryPolicyPayload(
            policy=ExpiryPolicy(months=updated.months, mode=ExpiryMode(updated.mode))
        )
