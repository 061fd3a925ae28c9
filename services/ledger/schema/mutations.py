"""The ledger's mutations: moving points, and the coalition's expiry policy (admins).

Each calls the ledger's front door (`services.ledger.service`) and turns its outcome into a
payload: problems the caller can fix become `userErrors`, whether the service found them before
its transaction (bad input) or inside it (not enough points).
"""

from __future__ import annotations

from collections.abc import Awaitable

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
from shared.errors import DomainError
from shared.graphql_types import GraphQLInfo, Money, user_errors
from shared.ids import to_global_id


async def _outcome(operation: Awaitable[service.Outcome]) -> service.Outcome:
    """The service's answer; input refused before any transaction becomes userErrors too."""
    try:
        return await operation
    except DomainError as exc:
        return service.Outcome(result=None, errors=exc.errors)


@strawberry.type
class LedgerMutation:
    @strawberry.mutation(description="Points for a purchase at the calling partner.")
    async def record_purchase(self, info: GraphQLInfo, input: RecordPurchaseInput) -> RecordPurchasePayload:
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
        if outcome.result is None:
            return RecordPurchasePayload(user_errors=user_errors(outcome.errors))
        return RecordPurchasePayload(
            transaction=earn_transaction(outcome.result, input.order_id),
            points_earned=outcome.result["points"],
        )

    @strawberry.mutation(description="Spend a member's points at the calling partner.")
    async def redeem_points(self, info: GraphQLInfo, input: RedeemPointsInput) -> RedeemPointsPayload:
        outcome = await _outcome(
            service.redeem_points(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                member_number=input.member_number,
                points=input.points,
                order_id=input.order_id,
            )
        )
        if outcome.result is None:
            return RedeemPointsPayload(user_errors=user_errors(outcome.errors))
        return RedeemPointsPayload(redemption=redemption_of(outcome.result))

    @strawberry.mutation(description="Refund all or part of a purchase: its points come back.")
    async def reverse_purchase(
        self, info: GraphQLInfo, input: ReversePurchaseInput
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

    @strawberry.mutation(description="Undo a redemption: the points go back to their lots.")
    async def cancel_redemption(
        self, info: GraphQLInfo, input: CancelRedemptionInput
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

    @strawberry.mutation(
        description="Hold points at a till: they leave `available` until captured, voided or expired."
    )
    async def authorize_redemption(
        self, info: GraphQLInfo, input: AuthorizeRedemptionInput
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
            )
        )
        if outcome.result is None:
            return AuthorizeRedemptionPayload(user_errors=user_errors(outcome.errors))
        return AuthorizeRedemptionPayload(authorization=Authorization.of(outcome.result))

    @strawberry.mutation(description="Spend all or part of a hold; the rest is released.")
    async def capture_redemption(
        self, info: GraphQLInfo, input: CaptureRedemptionInput
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

    @strawberry.mutation(description="Release a hold without spending it.")
    async def void_redemption(
        self, info: GraphQLInfo, input: VoidRedemptionInput
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

    @strawberry.mutation(description="Buy a catalogue reward at the calling partner: a voucher.")
    async def redeem_reward(self, info: GraphQLInfo, input: RedeemRewardInput) -> RedeemPointsPayload:
        outcome = await _outcome(
            service.redeem_reward(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                member_number=input.member_number,
                reward_id=str(input.reward_id),
                quantity=input.quantity,
            )
        )
        if outcome.result is None:
            return RedeemPointsPayload(user_errors=user_errors(outcome.errors))
        return RedeemPointsPayload(redemption=redemption_of(outcome.result))

    @strawberry.mutation(description="Change the coalition's expiry policy (admins).")
    async def update_expiry_policy(
        self, info: GraphQLInfo, input: UpdateExpiryPolicyInput
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
