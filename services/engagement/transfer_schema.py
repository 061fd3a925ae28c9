"""GraphQL for gifts and charity: transferPoints and donatePoints (member tokens). Rules live in
services/engagement/transfers.py; the booking in services/ledger/transfers.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from services.engagement import transfers as service
from services.ledger.schema import me as ledger_me
from services.partners.schema import Partner, partner_loader
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import GraphQLInfo, Money, Node, Points, UserError, user_errors
from shared.ids import require_global_id, to_global_id
from shared.operations import INPUT, KEY_CODES, mutation

SPEND_CODES = (UserErrorCode.INVALID_AMOUNT, UserErrorCode.INSUFFICIENT_POINTS, UserErrorCode.MEMBER_HAS_DEBT)


@strawberry.type(description="Points one member gave another.")
class Transfer(Node):
    points: Points = strawberry.field(description="Points given.")
    occurred_at: datetime = strawberry.field(description="When.")
    transaction_id: strawberry.ID = strawberry.field(
        description="The giver's TRANSFER_OUT transaction (the receiver's TRANSFER_IN is related to it)."
    )


@strawberry.type(description="Points a member gave to a charity: a redemption at it.")
class Donation(Node):
    points: Points = strawberry.field(description="Points given.")
    value: Money = strawberry.field(
        description="What the points are worth to the charity (its redeem price)."
    )
    transaction_id: strawberry.ID = strawberry.field(description="The member's REDEEM transaction.")
    charity_id: strawberry.Private[int]

    @strawberry.field(description="The charity.")
    async def charity(self, info: GraphQLInfo) -> Partner | None:
        return await partner_loader(info).load(self.charity_id)


@strawberry.input(description="Points to give another member.")
class TransferPointsInput:
    idempotency_key: str = strawberry.field(
        description="The app's unique key for this gift, 1 to 200 characters: a retry returns the first"
        " answer."
    )
    to_member_number: str = strawberry.field(description="The receiver's member number (12 digits).")
    points: Points = strawberry.field(
        description="1 or more, at most the points available (not pending, not held), within the"
        " daily and monthly limits."
    )
    message: str | None = strawberry.field(
        default=None, description="Up to 200 characters, shown to the receiver (and quoted in their mail)."
    )


@strawberry.type(description="The answer to transferPoints.")
class TransferPointsPayload:
    transfer: Transfer | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing moved.")


@strawberry.input(description="Points to give a charity.")
class DonatePointsInput:
    idempotency_key: str = strawberry.field(
        description="The app's unique key for this donation, 1 to 200 characters: a retry returns the first"
        " answer."
    )
    charity_id: strawberry.ID = strawberry.field(
        description="The charity (a Partner of kind CHARITY; see `charities`)."
    )
    points: Points = strawberry.field(description="1 or more, at most the points available.")


@strawberry.type(description="The answer to donatePoints.")
class DonatePointsPayload:
    donation: Donation | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing moved.")


@strawberry.type
class TransfersMutation:
    @mutation(
        "Give points to another member: the giver's lots move to the receiver with their issuer and"
        " expiry (settlement still knows whose points they are); both see it in their history, the"
        " receiver is mailed. Exactly once per idempotencyKey.",
        access=ledger_me.MEMBER_ONLY,
        codes=(
            *KEY_CODES,
            *SPEND_CODES,
            UserErrorCode.INVALID_MEMBER_NUMBER,
            UserErrorCode.MEMBER_NOT_FOUND,
            UserErrorCode.TRANSFER_LIMIT_REACHED,
        ),
    )
    async def transfer_points(
        self, info: GraphQLInfo, input: Annotated[TransferPointsInput, INPUT]
    ) -> TransferPointsPayload:
        try:
            outcome = await service.transfer_points(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                to_member_number=input.to_member_number,
                points=int(input.points),
                message=input.message,
            )
        except DomainError as exc:
            return TransferPointsPayload(user_errors=user_errors(exc.errors))
        if outcome.result is None:
            return TransferPointsPayload(user_errors=user_errors(outcome.errors))
        r = outcome.result
        return TransferPointsPayload(
            transfer=Transfer(
                id=strawberry.ID(to_global_id("Transfer", r["transfer_id"])),
                points=r["points"],
                occurred_at=datetime.fromisoformat(r["occurred_at"]),
                transaction_id=strawberry.ID(to_global_id("Transaction", r["transaction_id"])),
            )
        )

    @mutation(
        "Give points to a charity: a redemption at it, settled at its redeem price and shown on its"
        " statement. Exactly once per idempotencyKey.",
        access=ledger_me.MEMBER_ONLY,
        codes=(*KEY_CODES, *SPEND_CODES, UserErrorCode.INVALID_ID, UserErrorCode.CHARITY_NOT_FOUND),
    )
    async def donate_points(
        self, info: GraphQLInfo, input: Annotated[DonatePointsInput, INPUT]
    ) -> DonatePointsPayload:
        try:
            info.context.principal.require_member()  # who may ask, before what is wrong
            charity_id = require_global_id(input.charity_id, "Partner", "charityId")
            outcome = await service.donate_points(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                charity_id=charity_id,
                points=int(input.points),
            )
        except DomainError as exc:
            return DonatePointsPayload(user_errors=user_errors(exc.errors))
        if outcome.result is None:
            return DonatePointsPayload(user_errors=user_errors(outcome.errors))
        r = outcome.result
        return DonatePointsPayload(
            donation=Donation(
                id=strawberry.ID(to_global_id("Redemption", r["redemption_id"])),
                points=r["points"],
                value=Money.of(r["value"]),
                transaction_id=strawberry.ID(to_global_id("Transaction", r["transaction_id"])),
                charity_id=charity_id,
            )
        )
