"""GraphQL for moving and reading points: earn, redeem, reverse, cancel; balances and history."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

import strawberry

from services.ledger import holds, policy, queries, rewards, service
from services.partners import service as partners
from services.partners.schema import Partner
from shared import clock, sql
from shared.errors import DomainError
from shared.graphql_types import (
    Connection,
    GraphQLInfo,
    Money,
    MoneyInput,
    Node,
    Points,
    UserError,
    user_errors,
)
from shared.ids import to_global_id


@strawberry.enum
class TransactionKind(Enum):
    EARN = "EARN"
    REDEEM = "REDEEM"
    REVERSE = "REVERSE"
    CANCEL_REDEMPTION = "CANCEL_REDEMPTION"
    EXPIRE = "EXPIRE"


@strawberry.enum
class TransactionStatus(Enum):
    PENDING = "PENDING"
    AVAILABLE = "AVAILABLE"
    EXPIRED = "EXPIRED"
    REVERSED = "REVERSED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


@strawberry.type
class Balance:
    available: Points = strawberry.field(
        description="Spendable now; negative when a refund took back points already spent."
    )
    pending: Points = strawberry.field(description="Earned but still in the partner's return window.")
    held: Points = strawberry.field(
        description="Reserved by authorizations at a till, until captured, voided or expired."
    )


@strawberry.type
class Transaction(Node):
    kind: TransactionKind
    points: Points = strawberry.field(description="The change to the member's points (negative for spends).")
    status: TransactionStatus
    order_id: str | None
    occurred_at: datetime
    partner_id: strawberry.Private[int]

    @classmethod
    def of(cls, view: queries.TransactionView) -> Transaction:
        return cls(
            id=strawberry.ID(to_global_id("Transaction", view.id)),
            kind=TransactionKind(view.kind),
            points=view.points,
            status=TransactionStatus(view.status),
            order_id=view.order_id,
            occurred_at=view.occurred_at,
            partner_id=view.partner_id,
        )

    @strawberry.field
    async def partner(self, info: GraphQLInfo) -> Partner | None:
        loader = info.context.loaders.get("partner")
        if loader is None:
            from strawberry.dataloader import DataLoader

            async def load(ids: list[int]) -> list[Partner | None]:
                async with sql.connection(info.context.db) as conn:
                    found = await partners.get_partners(conn, ids)
                return [Partner.of(found[i]) if i in found else None for i in ids]

            loader = info.context.loaders["partner"] = DataLoader(load_fn=load)
        return await loader.load(self.partner_id)


def _earn_transaction(result: dict[str, Any], order_id: str) -> Transaction:
    available_at = datetime.fromisoformat(result["available_at"])
    return Transaction(
        id=strawberry.ID(to_global_id("Transaction", result["transaction_id"])),
        kind=TransactionKind.EARN,
        points=result["points"],
        status=TransactionStatus.PENDING if available_at > clock.now() else TransactionStatus.AVAILABLE,
        order_id=order_id,
        occurred_at=datetime.fromisoformat(result["occurred_at"]),
        partner_id=result["partner_id"],
    )


@strawberry.type
class ExpiringPoints:
    points: Points
    expires_at: datetime


@strawberry.type
class MemberRef:
    member_number: str


@strawberry.type
class MemberExpiry:
    member: MemberRef
    expires_on: date
    points: Points


@strawberry.enum
class ExpiryMode(Enum):
    PER_LOT = "PER_LOT"
    ACTIVITY_EXTENDS = "ACTIVITY_EXTENDS"


@strawberry.type
class ExpiryPolicy:
    months: int
    mode: ExpiryMode


@strawberry.input
class UpdateExpiryPolicyInput:
    months: int
    mode: ExpiryMode


@strawberry.type
class UpdateExpiryPolicyPayload:
    policy: ExpiryPolicy | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LedgerQuery:
    @strawberry.field(description="How long points live, and whether activity extends them.")
    async def expiry_policy(self, info: GraphQLInfo) -> ExpiryPolicy:
        async with info.context.session() as session:
            current = await policy.read_policy(session)
        return ExpiryPolicy(months=current.months, mode=ExpiryMode(current.mode))

    @strawberry.field(description="Points about to expire, per member and day, soonest first (admins).")
    async def points_expiring_soon(
        self, info: GraphQLInfo, within: timedelta, first: int | None = None, after: str | None = None
    ) -> Connection[MemberExpiry]:
        async with info.context.session() as session:
            page = await queries.points_expiring_soon(
                session, info.context.principal, within, first=first, after=after
            )
        return Connection.of(
            page,
            lambda e: MemberExpiry(
                member=MemberRef(member_number=e.member_number),
                expires_on=e.expires_on,
                points=e.points,
            ),
        )


@strawberry.type
class Redemption(Node):
    points: Points
    value: Money
    voucher_code: str | None = strawberry.field(
        default=None, description="For a catalogue reward: the code the member shows."
    )


@strawberry.type
class Reversal(Node):
    points: Points
    refunded: Money


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


@strawberry.enum
class AuthorizationStatus(Enum):
    ACTIVE = "ACTIVE"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    EXPIRED = "EXPIRED"


@strawberry.type
class Authorization(Node):
    points: Points
    status: AuthorizationStatus
    expires_at: datetime

    @classmethod
    def of(cls, answer: dict[str, Any]) -> Authorization:
        return cls(
            id=strawberry.ID(to_global_id("Authorization", answer["authorization_id"])),
            points=answer["points"],
            status=AuthorizationStatus(answer["status"]),
            expires_at=datetime.fromisoformat(answer["expires_at"]),
        )


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


def _redemption(result: dict[str, Any]) -> Redemption:
    return Redemption(
        id=strawberry.ID(to_global_id("Redemption", result["redemption_id"])),
        points=result["points"],
        value=Money.of(result["value"]),
        voucher_code=result.get("voucher_code"),
    )


@strawberry.input
class RedeemRewardInput:
    idempotency_key: str
    member_number: str
    reward_id: strawberry.ID
    quantity: int = 1


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
            transaction=_earn_transaction(outcome.result, input.order_id),
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
        return RedeemPointsPayload(redemption=_redemption(outcome.result))

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
            holds.authorize_redemption(
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
            holds.capture_redemption(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                authorization_id=str(input.authorization_id),
                points=input.points,
            )
        )
        if outcome.result is None:
            return RedeemPointsPayload(user_errors=user_errors(outcome.errors))
        return RedeemPointsPayload(redemption=_redemption(outcome.result))

    @strawberry.mutation(description="Release a hold without spending it.")
    async def void_redemption(
        self, info: GraphQLInfo, input: VoidRedemptionInput
    ) -> AuthorizeRedemptionPayload:
        outcome = await _outcome(
            holds.void_redemption(
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
            rewards.redeem_reward(
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
        return RedeemPointsPayload(redemption=_redemption(outcome.result))

    @strawberry.mutation(description="Change the coalition's expiry policy (admins).")
    async def update_expiry_policy(
        self, info: GraphQLInfo, input: UpdateExpiryPolicyInput
    ) -> UpdateExpiryPolicyPayload:
        async with info.context.session() as session:
            try:
                updated = await policy.update_policy(
                    session, info.context.principal, months=input.months, mode=input.mode.value
                )
            except DomainError as exc:
                return UpdateExpiryPolicyPayload(user_errors=user_errors(exc.errors))
            await session.commit()
        info.context.db.cache.forget(("expiry-policy",))
        return UpdateExpiryPolicyPayload(
            policy=ExpiryPolicy(months=updated.months, mode=ExpiryMode(updated.mode))
        )
