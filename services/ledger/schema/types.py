"""The ledger's GraphQL object types and enums (the enums are the domain's own)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import strawberry

from services.ledger import service
from services.ledger.models import EntryKind, EntryStatus, ExpiryMode, HoldStatus
from services.ledger.schema.breakdown import EarnBreakdownItem, breakdown_loader
from services.partners.schema import Partner, partner_loader
from shared import clock
from shared.graphql_types import GraphQLInfo, Money, Node, Points, graphql_enum
from shared.ids import to_global_id

TransactionKind = graphql_enum(
    EntryKind,
    name="TransactionKind",
    description="What moved the points.",
    values={
        EntryKind.EARN: "Points for a purchase (recordPurchase).",
        EntryKind.REDEEM: "Points spent: redeemPoints, a captured authorization, or a reward bought.",
        EntryKind.REVERSE: "Points taken back for a refund (reversePurchase).",
        EntryKind.CANCEL_REDEMPTION: "Points given back by cancelling a redemption (cancelRedemption).",
        EntryKind.EXPIRE: "Points that expired unspent.",
        EntryKind.ERASURE: "Points forfeited when the member's data was erased (eraseMember).",
        EntryKind.REFERRAL: "A referral bonus, issued by the coalition: a member the member referred"
        " made their first purchase and its return window passed.",
        EntryKind.ACTIVITY: "Points for an activity (a review, a survey, a newsletter sign-up, a"
        " birthday): issued by the partner that defined it (recordActivity), or by the coalition for"
        " its own activities. Available at once.",
        EntryKind.TRANSFER_OUT: "Points the member gave to another member (transferPoints): negative.",
        EntryKind.TRANSFER_IN: "Points another member gave the member (transferPoints): available at"
        " once, keeping the expiry they had.",
    },
)
TransactionStatus = graphql_enum(
    EntryStatus,
    name="TransactionStatus",
    description="Where the points of a transaction stand now (read at the time of asking).",
    values={
        EntryStatus.PENDING: "An earn still in the partner's return window: not spendable yet.",
        EntryStatus.AVAILABLE: "An earn, an activity's or a referral's points that are spendable (or"
        " were spent).",
        EntryStatus.EXPIRED: "An earn, an activity's or a referral's points whose lot expired.",
        EntryStatus.REVERSED: "An earn refunded in full.",
        EntryStatus.COMPLETED: "Any other transaction, done (a redemption, a refund, a gift sent or"
        " received, an expiry).",
        EntryStatus.CANCELLED: "A redemption that was cancelled: its points came back.",
    },
)
graphql_enum(
    ExpiryMode,
    description="How points expire.",
    values={
        ExpiryMode.PER_LOT: "Each purchase's points expire the policy's months after the purchase.",
        ExpiryMode.ACTIVITY_EXTENDS: "Any earn or redemption moves all the member's live points out to"
        " now + the policy's months (never shortening any, never reviving expired ones).",
    },
)
AuthorizationStatus = graphql_enum(
    HoldStatus,
    name="AuthorizationStatus",
    description="Where a hold at a till stands.",
    values={
        HoldStatus.ACTIVE: "Holding its points until captured, voided or expired.",
        HoldStatus.CAPTURED: "Spent (all or part of it; the rest was released).",
        HoldStatus.VOIDED: "Released without spending.",
        HoldStatus.EXPIRED: "Released at its expiresAt without being captured.",
    },
)


@strawberry.type(description="A member's points, coalition-wide, as of now.")
class Balance:
    available: Points = strawberry.field(
        description="Spendable now; negative when a refund took back points already spent."
    )
    pending: Points = strawberry.field(description="Earned but still in the partner's return window.")
    held: Points = strawberry.field(
        description="Reserved by authorizations at a till, until captured, voided or expired."
    )


@strawberry.type(description="One movement of a member's points, at one partner.")
class Transaction(Node):
    kind: TransactionKind = strawberry.field(description="What moved the points.")
    points: Points = strawberry.field(description="The change to the member's points (negative for spends).")
    status: TransactionStatus = strawberry.field(description="Where its points stand now.")
    order_id: str | None = strawberry.field(
        description="The partner's orderId of the purchase or redemption it belongs to (a refund or"
        " cancellation carries the original's; a reward bought carries voucher:<voucher code>, an"
        " activity activity:<its code>, a referral bonus referral:<id>); null for an expiry."
    )
    occurred_at: datetime = strawberry.field(
        description="When it happened: a purchase's occurredAt, an expiry's moment of expiry,"
        " otherwise when it was recorded. Settlement dates it by this instant."
    )
    partner_id: strawberry.Private[int]

    @classmethod
    def of(cls, view: service.TransactionView) -> Transaction:
        return cls(
            id=strawberry.ID(to_global_id("Transaction", view.id)),
            kind=TransactionKind(view.kind),
            points=view.points,
            status=TransactionStatus(view.status),
            order_id=view.order_id,
            occurred_at=view.occurred_at,
            partner_id=view.partner_id,
        )

    @strawberry.field(description="Where it happened.")
    async def partner(self, info: GraphQLInfo) -> Partner | None:
        return await partner_loader(info).load(self.partner_id)

    @strawberry.field(
        description="For an EARN: why the purchase earned what it did, as recorded with it (the same"
        " list recordPurchase returned); null for other kinds."
    )
    async def earn_breakdown(self, info: GraphQLInfo) -> list[EarnBreakdownItem] | None:
        if self.kind != TransactionKind.EARN or self.order_id is None:
            return None
        return await breakdown_loader(info).load((self.partner_id, self.order_id))


def earn_transaction(result: dict[str, Any], order_id: str) -> Transaction:
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


@strawberry.type(description="Points of a member that expire at one instant.")
class ExpiringPoints:
    points: Points = strawberry.field(description="How many (not counting points already spent).")
    expires_at: datetime = strawberry.field(description="When they expire.")


@strawberry.type(description="A member, by number only.")
class MemberRef:
    member_number: str = strawberry.field(description="The member's 12-digit coalition number.")


@strawberry.type(description="Points of one member that expire on one day (UTC).")
class MemberExpiry:
    member: MemberRef = strawberry.field(description="Whose points.")
    expires_on: date = strawberry.field(description="The day (UTC) they expire.")
    points: Points = strawberry.field(description="How many.")


@strawberry.type(description="How long points live: the coalition's expiry policy.")
class ExpiryPolicy:
    months: int = strawberry.field(description="Points expire this many months after they were earned.")
    mode: ExpiryMode = strawberry.field(description="Whether activity extends them.")


@strawberry.type(description="Points spent at a partner.")
class Redemption(Node):
    points: Points = strawberry.field(description="Points spent.")
    value: Money = strawberry.field(
        description="What they are worth at the partner's redeem price at the time, in the settlement"
        " currency: what the partner is reimbursed."
    )
    voucher_code: str | None = strawberry.field(
        default=None, description="For a catalogue reward: the code the member shows."
    )


@strawberry.type(description="A refund of a purchase, and the points it took back.")
class Reversal(Node):
    points: Points = strawberry.field(
        description="Points taken back by this refund: its share of what the purchase earned,"
        " floored cumulatively, so refunds of the whole purchase take back exactly what it earned."
    )
    refunded: Money = strawberry.field(description="The amount refunded, in the purchase's currency.")


@strawberry.type(description="A hold on a member's points at a till (two-phase redemption).")
class Authorization(Node):
    points: Points = strawberry.field(description="Points held.")
    status: AuthorizationStatus = strawberry.field(description="Where the hold stands.")
    expires_at: datetime = strawberry.field(
        description="When an uncaptured hold releases its points by itself."
    )

    @classmethod
    def of(cls, answer: dict[str, Any]) -> Authorization:
        return cls(
            id=strawberry.ID(to_global_id("Authorization", answer["authorization_id"])),
            points=answer["points"],
            status=AuthorizationStatus(answer["status"]),
            expires_at=datetime.fromisoformat(answer["expires_at"]),
        )


def redemption_of(result: dict[str, Any]) -> Redemption:
    return Redemption(
        id=strawberry.ID(to_global_id("Redemption", result["redemption_id"])),
        points=result["points"],
        value=Money.of(result["value"]),
        voucher_code=result.get("voucher_code"),
    )
