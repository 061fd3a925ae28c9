"""GraphQL for earning: recordPurchase, recordPurchases and reversePurchase (earning decides the
points, the ledger books them), previewEarn, and a partner's earn rules."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from services.earning import service
from services.earning.rule_changes import FIELD
from services.earning.schema_inputs import (
    ArchiveEarnRuleInput,
    ArchiveEarnRulePayload,
    CreateEarnRuleInput,
    CreateEarnRulePayload,
    EarnPreview,
    EarnRule,
    EarnRuleKind,
    RecordPurchaseInput,
    RecordPurchasePayload,
    RecordPurchasesInput,
    RecordPurchasesPayload,
    ReversePurchaseInput,
    ReversePurchasePayload,
    UpdateEarnRuleInput,
    UpdateEarnRulePayload,
)
from services.earning.schema_promotions import PromotionsMutation, PromotionsQuery
from services.ledger.schema.breakdown import breakdown_items
from services.ledger.schema.types import Reversal, earn_transaction
from services.ledger.service import Outcome
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import GraphQLInfo, Money, user_errors
from shared.ids import require_global_id, to_global_id
from shared.operations import INPUT, KEY_CODES, MEMBER_CODES, field, mutation, partner, partner_or_admin

RULES_ACCESS = partner_or_admin("rules:write", "admin:partners", "its own rules", "any partner's")
PURCHASE_CODES = (
    UserErrorCode.UNKNOWN_CURRENCY,
    UserErrorCode.INVALID_AMOUNT,
    UserErrorCode.CURRENCY_MISMATCH,
    UserErrorCode.AMOUNT_MISMATCH,
    UserErrorCode.IN_FUTURE,
    UserErrorCode.PARTNER_NOT_FOUND,
)
EARN_CODES = (
    *KEY_CODES,
    *MEMBER_CODES,
    *PURCHASE_CODES,
    UserErrorCode.TOO_OLD,
    UserErrorCode.DUPLICATE_ORDER,
    UserErrorCode.PROMO_CODE_INVALID,
    UserErrorCode.PROMO_CODE_EXPIRED,
    UserErrorCode.PROMO_CODE_USED,
)
RULE_CODES = (
    UserErrorCode.REQUIRED,
    UserErrorCode.TOO_LONG,
    UserErrorCode.INVALID,
    UserErrorCode.INVALID_AMOUNT,
)


def rule_of(version: service.RuleVersion) -> EarnRule:
    return EarnRule(
        id=strawberry.ID(to_global_id("EarnRule", version.rule_id)),
        name=version.name,
        kind=EarnRuleKind(version.kind),
        sku=version.sku,
        category=version.category,
        multiplier=version.multiplier,
        points_per_unit=version.points_per_unit,
        min_spend=version.min_spend,
        cap_per_purchase=version.cap_per_purchase,
        cap_per_member_day=version.cap_per_member_day,
        cap_per_member_month=version.cap_per_member_month,
        valid_from=version.valid_from,
        valid_until=version.valid_until,
        effective_from=version.effective_from,
        archived=version.archived,
    )


def purchase_of(input: RecordPurchaseInput) -> service.PurchaseInput:
    lines = None
    if input.lines is not None:
        lines = tuple(
            service.LineInput(
                sku=line.sku,
                category=line.category,
                quantity=line.quantity,
                unit_price=line.unit_price.to_domain() if line.unit_price else None,
                amount=line.amount.to_domain() if line.amount else None,
            )
            for line in input.lines
        )
    return service.PurchaseInput(
        idempotency_key=input.idempotency_key,
        member_number=input.member_number,
        order_id=input.order_id,
        amount=input.amount.to_domain(),
        occurred_at=input.occurred_at,
        lines=lines,
        promo_codes=tuple(input.promo_codes) if input.promo_codes is not None else None,
        channel=input.channel,
    )


def purchase_payload(outcome: Outcome, order_id: str) -> RecordPurchasePayload:
    """recordPurchase's answer to one purchase (recordPurchases gives one per purchase)."""
    if outcome.result is None:
        return RecordPurchasePayload(user_errors=user_errors(outcome.errors))
    points = outcome.result["points"]
    return RecordPurchasePayload(
        transaction=earn_transaction(outcome.result, order_id),
        points_earned=points,
        detail=outcome.result.get("detail"),
        user_errors=user_errors(outcome.errors),
    )


def _partner_id(value: strawberry.ID | None) -> int | None:
    return require_global_id(value, "Partner", "partnerId") if value is not None else None


def _terms(input: Any) -> dict[str, Any]:
    """The rule fields the input set (an update's UNSET ones left out)."""
    return {key: getattr(input, key) for key in FIELD if getattr(input, key) is not strawberry.UNSET}


@strawberry.type
class EarningQuery(PromotionsQuery):
    @field(
        "What a purchase would earn now, by the same engine and rules as recordPurchase, writing"
        ' nothing (a till shows "you will earn 120 points"). idempotencyKey and orderId are checked'
        " but not used.",
        access=partner("points:earn"),
        codes=(*KEY_CODES, *MEMBER_CODES, *PURCHASE_CODES),
    )
    async def preview_earn(
        self, info: GraphQLInfo, input: Annotated[RecordPurchaseInput, INPUT]
    ) -> EarnPreview:
        preview = await service.preview_earn(info.context.db, info.context.principal, purchase_of(input))
        return EarnPreview(
            points=preview.points, earn_breakdown=breakdown_items(preview.points, preview.detail)
        )

    @field(
        "A partner's earn rules, each as it stands now (archived ones too), oldest first.",
        access=RULES_ACCESS,
        codes=(UserErrorCode.INVALID_ID, UserErrorCode.REQUIRED, UserErrorCode.PARTNER_NOT_FOUND),
    )
    async def earn_rules(
        self,
        info: GraphQLInfo,
        partner_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="The Partner (global ID): yours (omit it), or any for an admin."),
        ] = None,
    ) -> list[EarnRule]:
        found = await service.earn_rules(info.context.db, info.context.principal, _partner_id(partner_id))
        return [rule_of(v) for v in found]


@strawberry.type
class EarningMutation(PromotionsMutation):
    @mutation(
        "Points for a purchase at the calling partner, as its earn rules in force at occurredAt say"
        " (earnRate times amount without rules), rounded once, pending until the return window has"
        " passed, with the breakdown of why. Exactly once per idempotencyKey.",
        access=partner("points:earn"),
        codes=EARN_CODES,
    )
    async def record_purchase(
        self, info: GraphQLInfo, input: Annotated[RecordPurchaseInput, INPUT]
    ) -> RecordPurchasePayload:
        try:
            outcome = await service.record_purchase(
                info.context.db, info.context.principal, purchase_of(input)
            )
        except DomainError as exc:
            return RecordPurchasePayload(user_errors=user_errors(exc.errors))
        return purchase_payload(outcome, input.order_id)

    @mutation(
        "Many purchases at the calling partner at once (a till's backlog, a day's sales): each earns"
        " exactly as recordPurchase would earn it (the same rules, lines, promoCodes and channel, the"
        " same earnBreakdown), with its own idempotencyKey and its own answer, in input order; one bad"
        " purchase fails only itself. Written set-based: up to 1,000 purchases cost a few statements,"
        " not two each (a partner with a cap per member books each purchase on its own, under the"
        " member's lock).",
        access=partner("points:earn"),
        codes=(*EARN_CODES, UserErrorCode.BATCH_TOO_LARGE, UserErrorCode.LOOKUP_LIMIT_REACHED),
    )
    async def record_purchases(
        self, info: GraphQLInfo, input: Annotated[RecordPurchasesInput, INPUT]
    ) -> RecordPurchasesPayload:
        batch = [purchase_of(p) for p in input.purchases]
        try:
            outcomes = await service.record_purchases(info.context.db, info.context.principal, batch)
        except DomainError as exc:
            return RecordPurchasesPayload(user_errors=user_errors(exc.errors))
        return RecordPurchasesPayload(
            results=[purchase_payload(o, p.order_id) for o, p in zip(outcomes, batch, strict=True)]
        )

    @mutation(
        "Refund all or part of one of the calling partner's purchases: its points are taken back, pro"
        " rata and cumulatively floored (or, by line, exactly what those lines earned under the rules"
        " of the purchase); points already spent come from the member's other points, and what is"
        " still missing becomes a debt later earns repay. Exactly once per idempotencyKey.",
        access=partner("points:reverse"),
        codes=(
            *KEY_CODES,
            UserErrorCode.UNKNOWN_CURRENCY,
            UserErrorCode.INVALID_AMOUNT,
            UserErrorCode.PURCHASE_NOT_FOUND,
            UserErrorCode.CURRENCY_MISMATCH,
            UserErrorCode.ALREADY_REVERSED,
            UserErrorCode.REFUND_EXCEEDS_PURCHASE,
            UserErrorCode.LINE_NOT_FOUND,
        ),
    )
    async def reverse_purchase(
        self, info: GraphQLInfo, input: Annotated[ReversePurchaseInput, INPUT]
    ) -> ReversePurchasePayload:
        lines = None
        if input.lines is not None:
            lines = tuple(service.RefundLine(line.sku, line.quantity) for line in input.lines)
        try:
            outcome = await service.reverse_purchase(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                order_id=input.order_id,
                amount=input.amount.to_domain() if input.amount else None,
                lines=lines,
            )
        except DomainError as exc:
            return ReversePurchasePayload(user_errors=user_errors(exc.errors))
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

    @mutation(
        "A new earn rule, in force for purchases from now (or its validFrom) on.",
        access=RULES_ACCESS,
        codes=(
            *RULE_CODES,
            UserErrorCode.INVALID_ID,
            UserErrorCode.PARTNER_NOT_FOUND,
            UserErrorCode.LIMIT_REACHED,
        ),
    )
    async def create_earn_rule(
        self, info: GraphQLInfo, input: Annotated[CreateEarnRuleInput, INPUT]
    ) -> CreateEarnRulePayload:
        try:
            version = await service.create_rule(
                info.context.db,
                info.context.principal,
                partner_id=_partner_id(input.partner_id),
                terms=_terms(input),
            )
        except DomainError as exc:
            return CreateEarnRulePayload(user_errors=user_errors(exc.errors))
        return CreateEarnRulePayload(rule=rule_of(version))

    @mutation(
        "A new version of an earn rule from effectiveFrom on; what was earned before keeps its rules.",
        access=RULES_ACCESS,
        codes=(
            *RULE_CODES,
            UserErrorCode.INVALID_ID,
            UserErrorCode.RULE_NOT_FOUND,
            UserErrorCode.IN_PAST,
            UserErrorCode.CONTRACT_EXISTS,
        ),
    )
    async def update_earn_rule(
        self, info: GraphQLInfo, input: Annotated[UpdateEarnRuleInput, INPUT]
    ) -> UpdateEarnRulePayload:
        try:
            version = await service.update_rule(
                info.context.db,
                info.context.principal,
                rule_id=require_global_id(input.rule_id, "EarnRule", "ruleId"),
                changes=_terms(input),
                effective_from=input.effective_from,
            )
        except DomainError as exc:
            return UpdateEarnRulePayload(user_errors=user_errors(exc.errors))
        return UpdateEarnRulePayload(rule=rule_of(version))

    @mutation(
        "End an earn rule from effectiveFrom on; purchases before keep it (and their refunds).",
        access=RULES_ACCESS,
        codes=(
            UserErrorCode.INVALID,
            UserErrorCode.INVALID_ID,
            UserErrorCode.RULE_NOT_FOUND,
            UserErrorCode.IN_PAST,
            UserErrorCode.CONTRACT_EXISTS,
        ),
    )
    async def archive_earn_rule(
        self, info: GraphQLInfo, input: Annotated[ArchiveEarnRuleInput, INPUT]
    ) -> ArchiveEarnRulePayload:
        try:
            version = await service.archive_rule(
                info.context.db,
                info.context.principal,
                rule_id=require_global_id(input.rule_id, "EarnRule", "ruleId"),
                effective_from=input.effective_from,
            )
        except DomainError as exc:
            return ArchiveEarnRulePayload(user_errors=user_errors(exc.errors))
        return ArchiveEarnRulePayload(rule=rule_of(version))
