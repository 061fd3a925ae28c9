"""The ledger's mutation inputs and payloads.

The fields every point-moving input shares (idempotencyKey, memberNumber, orderId) are explained
once here, exactly as `services/ledger/idempotency.py`, `outcomes.py` and the earn enforce them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry

from services.ledger.models import ExpiryMode
from services.ledger.schema.types import Authorization, ExpiryPolicy, Redemption, Reversal, Transaction
from shared.graphql_types import MoneyInput, Points, UserError
from shared.list_sizes import list_size

IDEMPOTENCY_KEY = (
    "Your id for this attempt at the operation, so a retry cannot move points twice: any text of 1"
    " to 200 characters without control characters (a UUID is a good choice), unique per OAuth"
    " client across all its operations, and kept for good. Retrying with the same key and the same"
    " input (after a timeout, a dropped connection or a 503) moves nothing and returns the first"
    " answer: its result, or the refusal that depended on the state of the ledger"
    " (INSUFFICIENT_POINTS, MEMBER_NOT_FOUND, DUPLICATE_ORDER…); a retry sent while the first is"
    " still running gets its answer once it is done. The same key with another input, or for"
    ' another operation, is IDEMPOTENCY_KEY_REUSED (values compare as sent: "12.9" and "12.90"'
    " differ). A refusal of the input itself (a blank, malformed or out-of-range field, a currency"
    " the partner does not trade in, a purchase too old) is not stored: correct the input and send"
    " it with the same key."
)
MEMBER_NUMBER = (
    "The member's coalition number, as on their card: 12 ASCII digits, the last a Luhn check digit"
    " (INVALID_MEMBER_NUMBER otherwise). A number nobody has and a member not linked to you get the"
    " same MEMBER_NOT_FOUND, and a client that gets too many of those is RATE_LIMITED for a while."
)
SPEND_MEMBER = MEMBER_NUMBER + " Spending needs a link: you enrolled the member, or they earned with you."
ORDER_TEXT = "1 to 200 characters without control characters, compared exactly (no trimming)"
POINTS = "Points to spend, 1 to 1,000,000,000,000."
MEMBER_CODE = (
    "The member's one-time spend code (8 digits, shown in their app, valid 2 minutes): required when"
    " the member asks for one (MEMBER_CODE_REQUIRED without it); a wrong, used or expired code is"
    " MEMBER_CODE_INVALID, even from a member who does not require one. A successful spend"
    " consumes it. Not part of what the idempotencyKey names: a retry of a spend that succeeded"
    " returns its first answer whatever code it carries, and a refused code is not stored (ask the"
    " member for a new code and retry with the same key)."
)
ENTRY_PAYLOAD = "Why nothing moved; empty on success."


@strawberry.input(description="The coalition's new expiry policy.")
class UpdateExpiryPolicyInput:
    months: int = strawberry.field(description="Months points live, 1 to 240.")
    mode: ExpiryMode = strawberry.field(description="Whether activity extends them.")


@strawberry.type(description="The answer to updateExpiryPolicy.")
class UpdateExpiryPolicyPayload:
    policy: ExpiryPolicy | None = strawberry.field(default=None, description="The policy now in force.")
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why it was not changed; empty on success."
    )


@strawberry.input(description="A purchase at the calling partner, to earn points for.")
class RecordPurchaseInput:
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)
    member_number: str = strawberry.field(
        description=MEMBER_NUMBER + " An earn that gives points links the member to you (the card"
        " presented at the till is consent)."
    )
    order_id: str = strawberry.field(
        description=f"Your id for the purchase (the till's order or receipt number): {ORDER_TEXT}."
        " Unique per partner among your purchases: a second purchase with it is DUPLICATE_ORDER (a"
        " retry of the same purchase sends the same idempotencyKey instead). reversePurchase names"
        " the purchase by it, and reconciliation files match on it."
    )
    amount: MoneyInput = strawberry.field(
        description="What the customer paid, in your currency (CURRENCY_MISMATCH otherwise). Points"
        " are earnRate times amount, rounded once for the purchase as your earnRounding says."
    )
    occurred_at: datetime | None = strawberry.field(
        default=None,
        description="When the purchase happened, with its offset (2026-11-01T09:30:00Z); omitted:"
        " now. At most 5 minutes in the future (IN_FUTURE), and not so long ago that its points"
        " would already have expired (TOO_OLD). The return window (the points are pending until"
        " occurredAt + returnWindowDays) and the expiry count from it, and settlement and"
        " reconciliation date the purchase by it, whenever it was recorded.",
    )


@strawberry.type(description="The answer to recordPurchase.")
class RecordPurchasePayload:
    transaction: Transaction | None = strawberry.field(
        default=None, description="The EARN transaction; null on userErrors."
    )
    points_earned: Points | None = strawberry.field(
        default=None, description="Points the purchase earned (may be 0: nothing is then linked)."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=ENTRY_PAYLOAD)


@strawberry.input(description="Many purchases at the calling partner, to earn points for at once.")
class RecordPurchasesInput:
    purchases: list[RecordPurchaseInput] = strawberry.field(
        description="Up to 1,000 purchases (BATCH_TOO_LARGE, naming `purchases`, otherwise: nothing is"
        " recorded). Each is exactly a recordPurchase input, with its own idempotencyKey: it gets the"
        " answer recordPurchase would give it, and a retry of it through either mutation replays."
    )


@strawberry.type(description="The answer to recordPurchases.")
class RecordPurchasesPayload:
    # Costed as one result by the gateway's query cost limit: the list is as long as the input
    # the caller sent (at most 1,000 purchases, within the body limit), so a small document cannot
    # multiply it; what the limit guards against is amplification (docs/decisions.md).
    results: list[RecordPurchasePayload] = strawberry.field(
        default_factory=list,
        description="One answer per purchase, in input order: its transaction, or its userErrors (one"
        " bad purchase fails only itself). Empty when the batch itself is refused (userErrors).",
        metadata=list_size(fixed=1),
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why the batch as a whole was refused; empty otherwise."
    )


@strawberry.input(description="Points a linked member spends at the calling partner now.")
class RedeemPointsInput:
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)
    member_number: str = strawberry.field(description=SPEND_MEMBER)
    points: Points = strawberry.field(description=POINTS)
    order_id: str = strawberry.field(
        description=f"Your id for this payment with points: {ORDER_TEXT}. Unique per partner among"
        " your redemptions (DUPLICATE_ORDER); a purchase may share it. Do not reuse an"
        " authorization's: its capture is recorded under it."
    )
    member_code: str | None = strawberry.field(default=None, description=MEMBER_CODE)


@strawberry.type(description="The answer to redeemPoints, captureRedemption and redeemReward.")
class RedeemPointsPayload:
    redemption: Redemption | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=ENTRY_PAYLOAD)


@strawberry.input(description="A refund of one of the calling partner's purchases.")
class ReversePurchaseInput:
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)
    order_id: str = strawberry.field(description="The purchase's orderId, as recordPurchase received it.")
    amount: MoneyInput | None = strawberry.field(
        default=None,
        description="The amount refunded, in the purchase's currency, at most what is left of it;"
        " omitted: all that is left.",
    )


@strawberry.type(description="The answer to reversePurchase.")
class ReversePurchasePayload:
    reversal: Reversal | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=ENTRY_PAYLOAD)


@strawberry.input(description="A redemption of the calling partner's to undo.")
class CancelRedemptionInput:
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)
    redemption_id: strawberry.ID = strawberry.field(description="The Redemption's global ID.")


@strawberry.type(description="The answer to cancelRedemption.")
class CancelRedemptionPayload:
    redemption_id: strawberry.ID | None = strawberry.field(
        default=None, description="The cancelled Redemption; null on userErrors."
    )
    points_restored: Points | None = strawberry.field(
        default=None,
        description="Points given back (those of lots past their expiry expire again at once).",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=ENTRY_PAYLOAD)


@strawberry.input(description="A hold on a linked member's points at the calling partner's till.")
class AuthorizeRedemptionInput:
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)
    member_number: str = strawberry.field(description=SPEND_MEMBER)
    points: Points = strawberry.field(description="Points to hold, 1 to 1,000,000,000,000.")
    order_id: str = strawberry.field(
        description=f"Your id for the payment: {ORDER_TEXT}. An authorization or redemption of yours"
        " with it already is DUPLICATE_ORDER; the capture is recorded as a redemption under it."
    )
    expires_in: timedelta = strawberry.field(description="How long the hold lasts (10 s to 30 days).")
    member_code: str | None = strawberry.field(
        default=None, description=MEMBER_CODE + " The hold consumes it; its capture needs none."
    )


@strawberry.type(description="The answer to authorizeRedemption and voidRedemption.")
class AuthorizeRedemptionPayload:
    authorization: Authorization | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=ENTRY_PAYLOAD)


@strawberry.input(description="Spend all or part of an active hold.")
class CaptureRedemptionInput:
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)
    authorization_id: strawberry.ID = strawberry.field(description="The Authorization's global ID.")
    points: Points | None = strawberry.field(
        default=None, description="All or part of the hold; omitted, all of it. The rest is released."
    )


@strawberry.input(description="Release an active hold.")
class VoidRedemptionInput:
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)
    authorization_id: strawberry.ID = strawberry.field(description="The Authorization's global ID.")


@strawberry.input(
    description="A catalogue reward a linked member buys with points at the calling partner, or that a"
    " member buys with their own points in their app (a member token)."
)
class RedeemRewardInput:
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)
    member_number: str | None = strawberry.field(
        default=None,
        description=SPEND_MEMBER + " Required for partners; a member token may omit it or send its own"
        " number (another is MEMBER_NOT_FOUND).",
    )
    reward_id: strawberry.ID = strawberry.field(description="The Reward's global ID: one of yours, on sale.")
    quantity: int = strawberry.field(
        default=1, description="Units, 1 to 100; points are pointsCost times quantity, one voucher in all."
    )
    member_code: str | None = strawberry.field(
        default=None, description=MEMBER_CODE + " A member buying in their own app needs none."
    )
