"""The ledger's GraphQL object types and enums (the enums are the domain's own)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import strawberry

from services.ledger import service
from services.ledger.models import EntryKind, EntryStatus, ExpiryMode, HoldStatus
from services.partners.schema import Partner, partner_loader
from shared import clock
from shared.graphql_types import GraphQLInfo, Money, Node, Points
from shared.ids import to_global_id

TransactionKind = strawberry.enum(EntryKind, name="TransactionKind", description="What moved the points.")
TransactionStatus = strawberry.enum(
    EntryStatus, name="TransactionStatus", description="Where the points of a transaction stand now."
)
strawberry.enum(ExpiryMode, description="How points expire.")
AuthorizationStatus = strawberry.enum(
    HoldStatus, name="AuthorizationStatus", description="Where a hold at a till stands."
)


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


@strawberry.type
class ExpiryPolicy:
    months: int
    mode: ExpiryMode


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


def redemption_of(result: dict[str, Any]) -> Redemption:
    return Redemption(
        id=strawberry.ID(to_global_id("Redemption", result["redemption_id"])),
        points=result["points"],
        value=Money.of(result["value"]),
        voucher_code=result.get("voucher_code"),
    )
