"""GraphQL for promotions: createPromotion, archivePromotion, promotions (a connection), and the
Promotion type with its budget spent and left. Rules live in services/earning/promotions.py and
promotion_changes.py; this file only translates."""

from __future__ import annotations

import decimal
from datetime import datetime, timedelta
from typing import Annotated

import strawberry

from services.earning import service
from services.earning.schema_inputs import PurchaseChannel
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import After, Connection, First, GraphQLInfo, Node, Points, UserError, user_errors
from shared.ids import require_global_id, to_global_id
from shared.operations import INPUT, PAGE_CODES, field, mutation, partner_or_admin

ACCESS = partner_or_admin(
    "rules:write", "admin:partners", "its own promotions", "any partner's, or the coalition's"
)
CODES = (
    UserErrorCode.REQUIRED,
    UserErrorCode.TOO_LONG,
    UserErrorCode.INVALID,
    UserErrorCode.INVALID_AMOUNT,
    UserErrorCode.INVALID_ID,
    UserErrorCode.PARTNER_NOT_FOUND,
)
STACKING = (
    " Stacking: every stackable live promotion whose conditions hold applies; of the non-stackable"
    " ones only the best for the member: the most points, then the higher priority, then the newer"
    " promotion. A promotion with a budget applies whole or not at all (the next best then applies)."
)


@strawberry.input(description="When a promotion repeats: an iCalendar RRULE and each occurrence's length.")
class RecurrenceInput:
    rule: str = strawberry.field(
        description="RRULE text (RFC 5545, python-dateutil), e.g. FREQ=WEEKLY;BYDAY=TU;BYHOUR=14;BYMINUTE=0;"
        "BYSECOND=0, expanded from startsAt in your timeZone (UTC for a coalition promotion): wall-clock"
        " times, so 14:00 stays 14:00 across a DST change. Fields it leaves out come from startsAt."
    )
    duration: timedelta = strawberry.field(description="Each occurrence's length, 1 second to 366 days.")


@strawberry.input(description="What a purchase must be for the promotion to apply (all that are set).")
class PromotionConditionsInput:
    min_spend: decimal.Decimal | None = strawberry.field(
        default=None, description="The purchase's amount at least this (your currency)."
    )
    categories: list[str] | None = strawberry.field(
        default=None, description="Only lines of these categories (or of skus) earn it."
    )
    skus: list[str] | None = strawberry.field(
        default=None, description="Only lines of these SKUs (or categories)."
    )
    channels: list[PurchaseChannel] | None = strawberry.field(
        default=None, description="Made in one of these."
    )
    first_purchase: bool = strawberry.field(
        default=False, description="The member's first purchase with you."
    )
    inactive_days: int | None = strawberry.field(
        default=None, description="The member has not earned or redeemed with you for this many days."
    )


@strawberry.input(description="What the promotion gives: exactly one of the three.")
class PromotionEffectInput:
    multiplier: decimal.Decimal | None = strawberry.field(
        default=None,
        description="The matching lines' points times this: the promotion's item is line points x"
        " (multiplier - 1). Above 1, at most 1000.",
    )
    bonus_points: Points | None = strawberry.field(default=None, description="This many points more.")
    percent_of_amount: decimal.Decimal | None = strawberry.field(
        default=None, description="This percent of the matching lines' amount, as points (5 = 5 %)."
    )


@strawberry.input(description="A promotion." + STACKING)
class CreatePromotionInput:
    partner_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The Partner (global ID): yours (omit it); an admin omitting it creates a coalition"
        " promotion, at every partner, its points issued by the coalition.",
    )
    name: str = strawberry.field(description="1 to 200 characters, shown in earn breakdowns.")
    starts_at: datetime | None = strawberry.field(default=None, description="Live from; omitted: now.")
    ends_at: datetime | None = strawberry.field(default=None, description="Live until; omitted: no end.")
    recurrence: RecurrenceInput | None = strawberry.field(
        default=None, description="Live only inside its occurrences; omitted: all the time in the window."
    )
    conditions: PromotionConditionsInput | None = strawberry.field(default=None, description="None: any.")
    effect: PromotionEffectInput = strawberry.field(description="Exactly one effect (`effect` otherwise).")
    budget_points: Points | None = strawberry.field(
        default=None, description="At most this many points in all, exact under concurrent earns."
    )
    per_member_limit: int | None = strawberry.field(
        default=None, description="At most this many of a member's purchases are rewarded."
    )
    requires_code: bool = strawberry.field(default=False, description="Applies only with one of its codes.")
    stackable: bool = strawberry.field(default=False, description="Applies alongside others.")
    priority: int = strawberry.field(default=0, description="Between equals, the higher wins.")


@strawberry.type(description="A promotion of a partner, or of the coalition.")
class Promotion(Node):
    name: str = strawberry.field(description="Its name.")
    coalition: bool = strawberry.field(description="Funded by the coalition, at every partner.")
    starts_at: datetime = strawberry.field(description="Live from.")
    ends_at: datetime | None = strawberry.field(description="Live until; null: no end.")
    recurrence_rule: str | None = strawberry.field(description="Its RRULE; null: no recurrence.")
    recurrence_duration: timedelta | None = strawberry.field(description="Each occurrence's length.")
    budget_points: Points | None = strawberry.field(description="Its budget; null: none.")
    budget_spent: Points = strawberry.field(description="Points it has given (net of full refunds).")
    budget_left: Points | None = strawberry.field(description="What is left; null: no budget.")
    per_member_limit: int | None = strawberry.field(description="Purchases rewarded per member.")
    requires_code: bool = strawberry.field(description="Needs one of its promo codes.")
    stackable: bool = strawberry.field(description="Applies alongside others.")
    priority: int = strawberry.field(description="Between equals, the higher wins.")
    archived_at: datetime | None = strawberry.field(description="No longer applies since.")

    @classmethod
    def of(cls, p: service.Promotion) -> Promotion:
        return cls(
            id=strawberry.ID(to_global_id("Promotion", p.id)),
            name=p.name,
            coalition=p.coalition,
            starts_at=p.starts_at,
            ends_at=p.ends_at,
            recurrence_rule=p.recurrence,
            recurrence_duration=timedelta(seconds=p.recurrence_seconds) if p.recurrence_seconds else None,
            budget_points=p.budget_points,
            budget_spent=p.spent_points,
            budget_left=p.budget_points - p.spent_points if p.budget_points is not None else None,
            per_member_limit=p.per_member_limit,
            requires_code=p.requires_code,
            stackable=p.stackable,
            priority=p.priority,
            archived_at=p.archived_at,
        )


@strawberry.type(description="The answer to createPromotion.")
class CreatePromotionPayload:
    promotion: Promotion | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing changed.")


@strawberry.input(description="Stop a promotion now (purchases before keep what they earned).")
class ArchivePromotionInput:
    id: strawberry.ID = strawberry.field(description="The Promotion's global ID.")


@strawberry.type(description="The answer to archivePromotion.")
class ArchivePromotionPayload:
    promotion: Promotion | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing changed.")


def _partner(value: strawberry.ID | None) -> int | None:
    return require_global_id(value, "Partner", "partnerId") if value is not None else None


def terms_of(input: CreatePromotionInput) -> service.PromotionTerms:
    c = input.conditions or PromotionConditionsInput()
    return service.PromotionTerms(
        name=input.name,
        starts_at=input.starts_at,
        ends_at=input.ends_at,
        rule=input.recurrence.rule if input.recurrence else None,
        duration=input.recurrence.duration if input.recurrence else None,
        min_spend=c.min_spend,
        categories=tuple(c.categories) if c.categories is not None else None,
        skus=tuple(c.skus) if c.skus is not None else None,
        channels=tuple(c.channels) if c.channels is not None else None,
        first_purchase=c.first_purchase,
        inactive_days=c.inactive_days,
        requires_code=input.requires_code,
        multiplier=input.effect.multiplier,
        bonus_points=input.effect.bonus_points,
        percent_of_amount=input.effect.percent_of_amount,
        budget_points=input.budget_points,
        per_member_limit=input.per_member_limit,
        stackable=input.stackable,
        priority=input.priority,
    )


@strawberry.type
class PromotionsQuery:
    @field(
        "A partner's promotions (an admin omitting partnerId: the coalition's), oldest first, archived"
        " ones included.",
        access=ACCESS,
        codes=(*PAGE_CODES, UserErrorCode.INVALID_ID, UserErrorCode.PARTNER_NOT_FOUND),
    )
    async def promotions(
        self,
        info: GraphQLInfo,
        partner_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="The Partner (global ID): yours (omit it), or any for an admin."),
        ] = None,
        first: First = None,
        after: After = None,
    ) -> Connection[Promotion]:
        page = await service.promotions(
            info.context.db, info.context.principal, partner_id=_partner(partner_id), first=first, after=after
        )
        return Connection.of(page, Promotion.of)


@strawberry.type
class PromotionsMutation:
    @mutation(
        "A new promotion: purchases earn more while it is live and its conditions hold." + STACKING,
        access=ACCESS,
        codes=CODES,
    )
    async def create_promotion(
        self, info: GraphQLInfo, input: Annotated[CreatePromotionInput, INPUT]
    ) -> CreatePromotionPayload:
        try:
            created = await service.create_promotion(
                info.context.db,
                info.context.principal,
                partner_id=_partner(input.partner_id),
                terms=terms_of(input),
            )
        except DomainError as exc:
            return CreatePromotionPayload(user_errors=user_errors(exc.errors))
        return CreatePromotionPayload(promotion=Promotion.of(created))

    @mutation(
        "Stop a promotion from now on; purchases before keep what they earned (and their refunds).",
        access=ACCESS,
        codes=(UserErrorCode.INVALID_ID, UserErrorCode.PROMOTION_NOT_FOUND),
    )
    async def archive_promotion(
        self, info: GraphQLInfo, input: Annotated[ArchivePromotionInput, INPUT]
    ) -> ArchivePromotionPayload:
        try:
            archived = await service.archive_promotion(
                info.context.db, info.context.principal, require_global_id(input.id, "Promotion", "id")
            )
        except DomainError as exc:
            return ArchivePromotionPayload(user_errors=user_errors(exc.errors))
        return ArchivePromotionPayload(promotion=Promotion.of(archived))
