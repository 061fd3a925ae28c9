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
    RedeemPointsInput,
    RedeemPointsPayload,
    RedeemRewardInput,
    UpdateExpiryPolicyInput,
    UpdateExpiryPolicyPayload,
    VoidRedemptionInput,
)
from services.ledger.schema.types import (
    Authorization,
    ExpiryPolicy,
    redemption_of,
)
from shared.access import MEMBER_SCOPE
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import GraphQLInfo, user_errors
from shared.ids import to_global_id
from shared.operations import INPUT, KEY_CODES, MEMBER_CODES, Access, admin, mutation, partner


async def _outcome(operation: Awaitable[service.Outcome]) -> service.Outcome:
    """The service's answer; input refused before any transaction becomes userErrors too."""
    try:
        return await operation
    except DomainError as exc:
        return service.Outcome(result=None, errors=exc.errors)


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
