"""The earning service's GraphQL inputs and payloads: purchases (with lines), refunds (by line),
earn rules."""

from __future__ import annotations

import decimal
from datetime import datetime
from typing import Any

import strawberry

from services.earning.models import Channel, RuleKind
from services.ledger.schema.breakdown import EarnBreakdownItem, breakdown_items
from services.ledger.schema.inputs import ENTRY_PAYLOAD, IDEMPOTENCY_KEY, MEMBER_NUMBER, ORDER_TEXT
from services.ledger.schema.types import Reversal, Transaction
from shared.graphql_types import MoneyInput, Node, Points, UserError, graphql_enum
from shared.list_sizes import list_size

PurchaseChannel = graphql_enum(
    Channel,
    name="PurchaseChannel",
    description="Where a purchase was made.",
    values={Channel.STORE: "At a till.", Channel.ONLINE: "On a website.", Channel.APP: "In an app."},
)
EarnRuleKind = graphql_enum(
    RuleKind,
    name="EarnRuleKind",
    description="What an earn rule is about (from the fields it sets).",
    values={
        RuleKind.SKU: "Lines of one SKU: a multiplier of the base rate or points per unit.",
        RuleKind.CATEGORY: "Lines of one category: a multiplier of the base rate or points per unit.",
        RuleKind.PURCHASE: "The whole purchase: minimum spend, caps per purchase, per member and day"
        " or month.",
    },
)

ORDER = (
    " Evaluation order: per line the most specific rule wins (SKU, then category, then your base"
    " earnRate; multiplier 0 excludes the line); then minimum spend on the purchase; then promotions"
    " live at occurredAt (every stackable one, and the best non-stackable one); then the cap per"
    " purchase; then the caps per member and day / month (your timeZone); points are rounded once for"
    " the purchase, after all rules (your earnRounding), so lines never earn less than their total."
)


@strawberry.input(description="One line of a purchase.")
class PurchaseLineInput:
    sku: str = strawberry.field(description="Your product code, 1 to 200 characters, once per purchase.")
    category: str | None = strawberry.field(
        default=None, description="Your product category (rules by category)."
    )
    quantity: int = strawberry.field(default=1, description="Units, 1 to 1,000,000.")
    unit_price: MoneyInput | None = strawberry.field(
        default=None,
        description="Price per unit; the line's amount when amount is left out is this times quantity.",
    )
    amount: MoneyInput | None = strawberry.field(
        default=None, description="What the line cost in all, in the purchase's currency (or send unitPrice)."
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
        description="What the customer paid, in your currency (CURRENCY_MISMATCH otherwise); with lines,"
        " exactly the sum of their amounts (AMOUNT_MISMATCH). Points are earnRate times amount under your"
        " earn rules, rounded once for the purchase as your earnRounding says." + ORDER
    )
    occurred_at: datetime | None = strawberry.field(
        default=None,
        description="When the purchase happened, with its offset (2026-11-01T09:30:00Z); omitted:"
        " now. At most 5 minutes in the future (IN_FUTURE), and not so long ago that its points"
        " would already have expired (TOO_OLD). The return window (the points are pending until"
        " occurredAt + returnWindowDays) and the expiry count from it, the earn rules in force at it"
        " apply, and settlement and reconciliation date the purchase by it, whenever it was recorded.",
    )
    lines: list[PurchaseLineInput] | None = strawberry.field(
        default=None,
        description="The purchase's lines (1 to 1,000), for rules per SKU or category and refunds per"
        " line; omitted: one line of amount.",
    )
    promo_codes: list[str] | None = strawberry.field(
        default=None,
        description="Promo codes the customer presented (at most 10; case, hyphens and spaces do not"
        " matter), kept with the purchase. Each code that can be used is used once by this purchase and"
        " unlocks its promotion (a full refund gives the use back). One that cannot is a userError next"
        " to the recorded purchase, which still earns its points: PROMO_CODE_INVALID (mistyped, unknown,"
        " another partner's), PROMO_CODE_EXPIRED (at occurredAt), PROMO_CODE_USED (usesPerCode or"
        " usesPerMember reached, or named twice). A retry with the same idempotencyKey answers the same"
        " and uses nothing again.",
    )
    channel: PurchaseChannel | None = strawberry.field(default=None, description="Where it was made.")


@strawberry.type(description="The answer to recordPurchase.")
class RecordPurchasePayload:
    transaction: Transaction | None = strawberry.field(
        default=None, description="The EARN transaction; null on userErrors that refused it."
    )
    points_earned: Points | None = strawberry.field(
        default=None, description="Points the purchase earned (may be 0: nothing is then linked)."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description=ENTRY_PAYLOAD
        + " A recorded purchase may still carry PROMO_CODE_INVALID, PROMO_CODE_EXPIRED or"
        " PROMO_CODE_USED (one per code that did nothing).",
    )
    # The stored breakdown document: items are built only for a caller that asks for them (a
    # bulk import of 1,000 purchases seldom does, and building them was a few % of its time).
    detail: strawberry.Private[dict[str, Any] | None] = None

    @strawberry.field(description="Why it earned that: the items sum to pointsEarned.")
    def earn_breakdown(self) -> list[EarnBreakdownItem] | None:
        if self.points_earned is None:
            return None
        return breakdown_items(self.points_earned, self.detail)


@strawberry.input(description="Many purchases at the calling partner, to earn points for at once.")
class RecordPurchasesInput:
    purchases: list[RecordPurchaseInput] = strawberry.field(
        description="Up to 1,000 purchases (BATCH_TOO_LARGE, naming `purchases`, otherwise: nothing is"
        " recorded). Each is exactly a recordPurchase input (lines, promoCodes and channel included),"
        " with its own idempotencyKey: it earns and is answered as recordPurchase would earn and answer"
        " it, and a retry of it through either mutation replays."
    )


@strawberry.type(description="The answer to recordPurchases.")
class RecordPurchasesPayload:
    # Costed as one result by the gateway's query cost limit: the list is as long as the input
    # the caller sent (at most 1,000 purchases, within the body limit), so a small document cannot
    # multiply it; what the limit guards against is amplification (docs/decisions.md).
    results: list[RecordPurchasePayload] = strawberry.field(
        default_factory=list,
        description="One answer per purchase, in input order: its transaction, points and earnBreakdown,"
        " or its userErrors (one bad purchase fails only itself). Empty when the batch itself is"
        " refused (userErrors).",
        metadata=list_size(fixed=1),
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why the batch as a whole was refused; empty otherwise."
    )


@strawberry.type(description="What a purchase would earn now: previewEarn writes nothing.")
class EarnPreview:
    points: Points = strawberry.field(description="Points recordPurchase would give it now.")
    earn_breakdown: list[EarnBreakdownItem] = strawberry.field(description="Why; the items sum to points.")


@strawberry.input(description="Units of one line of a purchase to refund.")
class ReversePurchaseLineInput:
    sku: str = strawberry.field(description="The line's sku, as recordPurchase received it.")
    quantity: int = strawberry.field(description="Units refunded, at most those not refunded yet.")


@strawberry.input(description="A refund of one of the calling partner's purchases.")
class ReversePurchaseInput:
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)
    order_id: str = strawberry.field(description="The purchase's orderId, as recordPurchase received it.")
    amount: MoneyInput | None = strawberry.field(
        default=None,
        description="The amount refunded, in the purchase's currency, at most what is left of it;"
        " omitted (and no lines): all that is left.",
    )
    lines: list[ReversePurchaseLineInput] | None = strawberry.field(
        default=None,
        description="Refund by line instead of amount: takes back exactly what those units earned under"
        " the rules of the purchase, floor(sum of line points x units refunded / units), counted over"
        " all the purchase's refunds; the amount refunded is those lines' share. A purchase is refunded"
        " by line or by amount, not both (INVALID).",
    )


@strawberry.type(description="The answer to reversePurchase.")
class ReversePurchasePayload:
    reversal: Reversal | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=ENTRY_PAYLOAD)


@strawberry.type(description="An earn rule of a partner, as it stands now (versioned in time).")
class EarnRule(Node):
    name: str = strawberry.field(description="Its name, shown in earn breakdowns.")
    kind: EarnRuleKind = strawberry.field(description="What it is about.")
    sku: str | None = strawberry.field(description="The SKU its lines have (a SKU rule).")
    category: str | None = strawberry.field(description="The category its lines have (a category rule).")
    multiplier: decimal.Decimal | None = strawberry.field(description="Times the base rate; 0 excludes.")
    points_per_unit: decimal.Decimal | None = strawberry.field(
        description="Points per unit, whatever the price."
    )
    min_spend: decimal.Decimal | None = strawberry.field(
        description="Below this amount (your currency) a purchase earns nothing."
    )
    cap_per_purchase: Points | None = strawberry.field(description="At most these points per purchase.")
    cap_per_member_day: Points | None = strawberry.field(description="At most these per member and day.")
    cap_per_member_month: Points | None = strawberry.field(description="At most these per member and month.")
    valid_from: datetime = strawberry.field(description="It applies to purchases from this instant.")
    valid_until: datetime | None = strawberry.field(description="...and before this one; null: no end.")
    effective_from: datetime = strawberry.field(description="When this version of it took effect.")
    archived: bool = strawberry.field(description="It no longer applies (from effectiveFrom on).")


RULE_FIELDS = (
    "Rules without sku or category set minSpend or caps; a SKU or category rule sets exactly one of"
    " multiplier and pointsPerUnit."
)


@strawberry.input(description="An earn rule for a partner. " + RULE_FIELDS + ORDER)
class CreateEarnRuleInput:
    partner_id: strawberry.ID | None = strawberry.field(
        default=None, description="The Partner (global ID): yours (omit it), or any for an admin."
    )
    name: str = strawberry.field(description="1 to 200 characters.")
    category: str | None = strawberry.field(default=None, description="Lines of this category.")
    sku: str | None = strawberry.field(default=None, description="Lines of this SKU (beats a category rule).")
    multiplier: decimal.Decimal | None = strawberry.field(
        default=None, description='Times your earnRate, 0 to 1000, 6 decimals; "0" is an exclusion.'
    )
    points_per_unit: decimal.Decimal | None = strawberry.field(
        default=None, description="Points per unit bought (quantity), whatever the price."
    )
    min_spend: decimal.Decimal | None = strawberry.field(
        default=None, description="A purchase below this amount (your currency) earns nothing."
    )
    cap_per_purchase: Points | None = strawberry.field(
        default=None, description="Points per purchase at most."
    )
    cap_per_member_day: Points | None = strawberry.field(
        default=None,
        description="Points per member and day (your timeZone) at most, exact under concurrency.",
    )
    cap_per_member_month: Points | None = strawberry.field(
        default=None, description="Points per member and calendar month (your timeZone) at most."
    )
    valid_from: datetime | None = strawberry.field(
        default=None, description="Applies from; omitted: now. Never to purchases before its creation."
    )
    valid_until: datetime | None = strawberry.field(
        default=None, description="Applies until; omitted: no end."
    )


@strawberry.input(
    description="A new version of an earn rule from effectiveFrom on; fields left out keep their value,"
    " null clears one. Purchases before effectiveFrom keep the version they were earned under."
)
class UpdateEarnRuleInput:
    rule_id: strawberry.ID = strawberry.field(description="The EarnRule's global ID.")
    effective_from: datetime | None = strawberry.field(
        default=None, description="From when (not in the past; after its latest version); omitted: now."
    )
    name: str | None = strawberry.field(default=strawberry.UNSET, description="1 to 200 characters.")
    category: str | None = strawberry.field(default=strawberry.UNSET, description="Lines of this category.")
    sku: str | None = strawberry.field(default=strawberry.UNSET, description="Lines of this SKU.")
    multiplier: decimal.Decimal | None = strawberry.field(
        default=strawberry.UNSET, description="Times earnRate."
    )
    points_per_unit: decimal.Decimal | None = strawberry.field(
        default=strawberry.UNSET, description="Per unit."
    )
    min_spend: decimal.Decimal | None = strawberry.field(
        default=strawberry.UNSET, description="Minimum spend."
    )
    cap_per_purchase: Points | None = strawberry.field(
        default=strawberry.UNSET, description="Cap per purchase."
    )
    cap_per_member_day: Points | None = strawberry.field(default=strawberry.UNSET, description="Cap per day.")
    cap_per_member_month: Points | None = strawberry.field(
        default=strawberry.UNSET, description="Cap per month."
    )
    valid_from: datetime | None = strawberry.field(default=strawberry.UNSET, description="Applies from.")
    valid_until: datetime | None = strawberry.field(default=strawberry.UNSET, description="Applies until.")


@strawberry.input(description="End an earn rule from effectiveFrom on (purchases before keep it).")
class ArchiveEarnRuleInput:
    rule_id: strawberry.ID = strawberry.field(description="The EarnRule's global ID.")
    effective_from: datetime | None = strawberry.field(
        default=None, description="From when (not in the past); omitted: now."
    )


@strawberry.type(description="The answer to createEarnRule.")
class CreateEarnRulePayload:
    rule: EarnRule | None = strawberry.field(default=None, description="The new rule; null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing changed.")


@strawberry.type(description="The answer to updateEarnRule.")
class UpdateEarnRulePayload:
    rule: EarnRule | None = strawberry.field(default=None, description="The new version; null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing changed.")


@strawberry.type(description="The answer to archiveEarnRule.")
class ArchiveEarnRulePayload:
    rule: EarnRule | None = strawberry.field(
        default=None, description="The archived version; null on userErrors."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing changed.")
