"""The ledger's mutation inputs and payloads."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry

from services.ledger.models import ExpiryMode
from services.ledger.schema.types import Authorization, ExpiryPolicy, Redemption, Reversal, Transaction
from shared.graphql_types import MoneyInput, Points, UserError


@strawberry.input
class UpdateExpiryPolicyInput:
    months: int
    mode: ExpiryMode


@strawberry.type
class UpdateExpiryPolicyPayload:
    policy: ExpiryPolicy | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RecordPurchaseInput:
    idempotency_key: str
    member_number: str
    order_id: str
    amount: MoneyInput
    occurred_at: datetime | None = None


@strawberry.type
class RecordPurchasePayload:
    transaction: Transaction | None = None
    points_earned: Points | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RedeemPointsInput:
    idempotency_key: str
    member_number: str
    points: Points
    order_id: str


@strawberry.type
class RedeemPointsPayload:
    redemption: Redemption | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ReversePurchaseInput:
    idempotency_key: str
    order_id: str
    amount: MoneyInput | None = strawberry.field(
        default=None, description="The refunded amount; omitted, the rest of the purchase."
    )


@strawberry.type
class ReversePurchasePayload:
    reversal: Reversal | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CancelRedemptionInput:
    idempotency_key: str
    redemption_id: strawberry.ID


@strawberry.type
class CancelRedemptionPayload:
    redemption_id: strawberry.ID | None = None
    points_restored: Points | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class AuthorizeRedemptionInput:
    idempotency_key: str
    member_number: str
    points: Points
    order_id: str
    expires_in: timedelta = strawberry.field(description="How long the hold lasts (10 s to 30 days).")


@strawberry.type
class AuthorizeRedemptionPayload:
    authorization: Authorization | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CaptureRedemptionInput:
    idempotency_key: str
    authorization_id: strawberry.ID
    points: Points | None = strawberry.field(
        default=None, description="All or part of the hold; omitted, all of it. The rest is released."
    )


@strawberry.input
class VoidRedemptionInput:
    idempotency_key: str
    authorization_id: strawberry.ID


@strawberry.input
class RedeemRewardInput:
    idempotency_key: str
    member_number: str
    reward_id: strawberry.ID
    quantity: int = 1
