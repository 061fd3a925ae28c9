"""GraphQL for promo codes: generatePromoCodes (a batch of codes for a promotion) and
promoCodeBatches (a promotion's batches). Codes are used through recordPurchase's promoCodes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from services.earning import promo_code_batches as batches
from services.earning.promo_code_format import ALPHABET, MAX_PREFIX
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import GraphQLInfo, Node, UserError, user_errors
from shared.ids import require_global_id, to_global_id
from shared.operations import INPUT, field, mutation, partner_or_admin

ACCESS = partner_or_admin("rules:write", "admin:partners", "its own promotions", "any promotion")
CODES = (
    UserErrorCode.INVALID_ID,
    UserErrorCode.PROMOTION_NOT_FOUND,
    UserErrorCode.INVALID,
    UserErrorCode.IN_PAST,
)


@strawberry.type(description="Promo codes generated together for one promotion, sharing their terms.")
class PromoCodeBatch(Node):
    promotion_id: strawberry.ID = strawberry.field(description="The Promotion (global ID) the codes unlock.")
    prefix: str = strawberry.field(description="What every code of the batch starts with (may be empty).")
    count: int = strawberry.field(description="How many codes the batch holds.")
    uses_per_code: int = strawberry.field(description="How many purchases each code may be used on.")
    uses_per_member: int | None = strawberry.field(
        description="How many purchases one member may use codes of this batch on (any of its codes);"
        " null: no limit beyond usesPerCode."
    )
    expires_at: datetime | None = strawberry.field(
        description="From this instant on (by a purchase's occurredAt) the codes are PROMO_CODE_EXPIRED;"
        " null: when the promotion ends."
    )
    created_at: datetime = strawberry.field(description="When the batch was generated.")

    @classmethod
    def of(cls, batch: batches.Batch) -> PromoCodeBatch:
        return cls(
            id=strawberry.ID(to_global_id("PromoCodeBatch", batch.id)),
            promotion_id=strawberry.ID(to_global_id("Promotion", batch.promotion_id)),
            prefix=batch.prefix,
            count=batch.count,
            uses_per_code=batch.uses_per_code,
            uses_per_member=batch.uses_per_member,
            expires_at=batch.expires_at,
            created_at=batch.created_at,
        )


@strawberry.input(description="A batch of promo codes to generate for a promotion.")
class GeneratePromoCodesInput:
    promotion_id: strawberry.ID = strawberry.field(
        description="The Promotion (global ID): yours, or any for an admin; not one that has ended."
    )
    count: int = strawberry.field(
        description=f"How many codes, 1 to {batches.MAX_COUNT:,}. Up to {batches.RETURN_LIMIT:,} come back in"
        " the answer; a bigger batch is read with `coalition promo export BATCH --format csv`."
    )
    prefix: str = strawberry.field(
        default="",
        description=f"What every code starts with, up to {MAX_PREFIX} characters of {ALPHABET} (no 0/O,"
        " 1/I/L or U/V, which are misread; hyphens and spaces are dropped). The check character covers it.",
    )
    uses_per_code: int = strawberry.field(
        default=1,
        description=f"Purchases each code may be used on, 1 to {batches.MAX_USES:,} (1: single use).",
    )
    uses_per_member: int | None = strawberry.field(
        default=None,
        description="Purchases one member may use codes of this batch on, counted over all its codes;"
        " omitted: no limit beyond usesPerCode.",
    )
    expires_at: datetime | None = strawberry.field(
        default=None,
        description="When the codes stop working, in the future, with its offset; omitted: never"
        " before the promotion ends.",
    )


@strawberry.type(description="The answer to generatePromoCodes.")
class GeneratePromoCodesPayload:
    batch: PromoCodeBatch | None = strawberry.field(
        default=None, description="The new batch; null on userErrors."
    )
    codes: list[str] | None = strawberry.field(
        default=None,
        description=f"The codes (upper case, as printed; typed with hyphens, spaces or in lower case they"
        f" still work), when the batch holds at most {batches.RETURN_LIMIT:,}; null otherwise: export them.",
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why nothing was generated."
    )


def _promotion_id(value: strawberry.ID) -> int:
    return require_global_id(value, "Promotion", "promotionId")


@strawberry.type
class PromoCodeQuery:
    @field(
        "A promotion's batches of promo codes, oldest first.",
        access=ACCESS,
        codes=(UserErrorCode.INVALID_ID, UserErrorCode.PROMOTION_NOT_FOUND),
    )
    async def promo_code_batches(
        self,
        info: GraphQLInfo,
        promotion_id: Annotated[strawberry.ID, strawberry.argument(description="The Promotion (global ID).")],
    ) -> list[PromoCodeBatch]:
        batches.require_access(info.context.principal)  # FORBIDDEN before the argument is read
        found = await batches.batches(info.context.db, info.context.principal, _promotion_id(promotion_id))
        return [PromoCodeBatch.of(b) for b in found]


@strawberry.type
class PromoCodeMutation:
    @mutation(
        "A batch of distinct promo codes for a promotion: each a random body from an unambiguous"
        " alphabet and a check character (a mistyped code is PROMO_CODE_INVALID before any lookup)."
        " Customers present them at a purchase (recordPurchase promoCodes); a fully refunded purchase"
        " gives its codes' uses back. Another partner's promotion is FORBIDDEN.",
        access=ACCESS,
        codes=CODES,
    )
    async def generate_promo_codes(
        self, info: GraphQLInfo, input: Annotated[GeneratePromoCodesInput, INPUT]
    ) -> GeneratePromoCodesPayload:
        batches.require_access(info.context.principal)  # FORBIDDEN before the input is read
        try:
            made = await batches.generate(
                info.context.db,
                info.context.principal,
                batches.BatchTerms(
                    promotion_id=_promotion_id(input.promotion_id),
                    count=input.count,
                    prefix=input.prefix,
                    uses_per_code=input.uses_per_code,
                    uses_per_member=input.uses_per_member,
                    expires_at=input.expires_at,
                ),
            )
        except DomainError as exc:
            return GeneratePromoCodesPayload(user_errors=user_errors(exc.errors))
        return GeneratePromoCodesPayload(batch=PromoCodeBatch.of(made.batch), codes=made.codes)
