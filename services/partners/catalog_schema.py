"""GraphQL for the rewards catalogue: partners manage theirs, everyone browses."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated

import strawberry

from services.partners import catalog
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import After, Connection, First, GraphQLInfo, Node, Points, UserError, user_errors
from shared.ids import require_global_id, to_global_id
from shared.operations import ANY_TOKEN, INPUT, PAGE_CODES, field, mutation, partner


@strawberry.type(description="Something members buy with points at the partner that sells it: a voucher.")
class Reward(Node):
    partner_id: strawberry.ID = strawberry.field(description="The Partner (global ID) that sells it.")
    name: str = strawberry.field(description="What it is, for members.")
    description: str = strawberry.field(description="More about it, for members; may be empty.")
    points_cost: Points = strawberry.field(description="Points per unit.")
    stock: int | None = strawberry.field(description="Units left; null is unlimited.")
    valid_from: datetime = strawberry.field(description="On sale from this instant.")
    valid_until: datetime | None = strawberry.field(description="On sale until this instant; null: no end.")
    max_per_member: int | None = strawberry.field(
        description="How many one member may own (cancelled redemptions do not count); null: no limit."
    )
    archived: bool = strawberry.field(description="Taken off sale for good; vouchers issued stay valid.")

    @classmethod
    def of(cls, view: catalog.RewardView) -> Reward:
        return cls(
            id=strawberry.ID(to_global_id("Reward", view.id)),
            partner_id=strawberry.ID(to_global_id("Partner", view.partner_id)),
            name=view.name,
            description=view.description,
            points_cost=view.points_cost,
            stock=view.stock,
            valid_from=view.valid_from,
            valid_until=view.valid_until,
            max_per_member=view.max_per_member,
            archived=view.archived_at is not None,
        )


NAME = "At most 200 characters, not blank."
DESCRIPTION = "At most 4,000 characters."
COST = "Points per unit, 1 to 1,000,000,000."
STOCK = "Units on sale, at least 0; null: unlimited."
MAX_PER_MEMBER = "At least 1; null: no limit."


@strawberry.input(description="A reward for the calling partner's catalogue.")
class CreateRewardInput:
    name: str = strawberry.field(description=NAME)
    points_cost: Points = strawberry.field(description=COST)
    description: str = strawberry.field(default="", description=DESCRIPTION)
    stock: int | None = strawberry.field(default=None, description=STOCK)
    valid_from: datetime | None = strawberry.field(default=None, description="On sale from; omitted: now.")
    valid_until: datetime | None = strawberry.field(
        default=None, description="On sale until (after validFrom); omitted: no end."
    )
    max_per_member: int | None = strawberry.field(default=None, description=MAX_PER_MEMBER)


@strawberry.input(description="The fields of a reward to change; a field left out stays as it is.")
class UpdateRewardInput:
    reward_id: strawberry.ID = strawberry.field(description="The Reward's global ID.")
    name: str | None = strawberry.field(default=strawberry.UNSET, description=NAME)
    description: str | None = strawberry.field(default=strawberry.UNSET, description=DESCRIPTION)
    points_cost: Points | None = strawberry.field(default=strawberry.UNSET, description=COST)
    stock: int | None = strawberry.field(default=strawberry.UNSET, description=STOCK)
    valid_from: datetime | None = strawberry.field(default=strawberry.UNSET, description="On sale from.")
    valid_until: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="On sale until (after validFrom); null: no end."
    )
    max_per_member: int | None = strawberry.field(default=strawberry.UNSET, description=MAX_PER_MEMBER)


@strawberry.input(description="The reward to take off sale.")
class ArchiveRewardInput:
    reward_id: strawberry.ID = strawberry.field(description="The Reward's global ID.")


@strawberry.type(description="The answer to createReward, updateReward and archiveReward.")
class RewardPayload:
    reward: Reward | None = strawberry.field(
        default=None, description="The reward as it now is; null on userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why nothing changed; empty on success."
    )


# The checks of a reward's terms (text, numbers, validity period).
TERMS_CODES = (
    UserErrorCode.REQUIRED,
    UserErrorCode.TOO_LONG,
    UserErrorCode.INVALID,
    UserErrorCode.INVALID_AMOUNT,
)


def _reward_id(value: strawberry.ID) -> int:
    return require_global_id(value, "Reward", "rewardId")


def _partner_id(value: strawberry.ID | None) -> int | None:
    return None if value is None else require_global_id(value, "Partner", "partnerId")


async def _write(operation: Awaitable[catalog.RewardView]) -> RewardPayload:
    try:
        view = await operation
    except DomainError as exc:
        return RewardPayload(user_errors=user_errors(exc.errors))
    return RewardPayload(reward=Reward.of(view))


@strawberry.type
class CatalogQuery:
    @field(
        "Rewards on sale now, oldest first; a partner also sees its own archived and not yet valid"
        " ones, an admin everyone's.",
        access=ANY_TOKEN,
        codes=(UserErrorCode.INVALID_ID, *PAGE_CODES),
    )
    async def rewards(
        self,
        info: GraphQLInfo,
        partner_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this Partner's (global ID).")
        ] = None,
        first: First = None,
        after: After = None,
    ) -> Connection[Reward]:
        page = await catalog.list_rewards(
            info.context.db,
            info.context.principal,
            partner_id=_partner_id(partner_id),
            first=first,
            after=after,
        )
        return Connection.of(page, Reward.of)


@strawberry.type
class CatalogMutation:
    @mutation(
        "Add a reward to the calling partner's catalogue.", access=partner("catalog:write"), codes=TERMS_CODES
    )
    async def create_reward(
        self, info: GraphQLInfo, input: Annotated[CreateRewardInput, INPUT]
    ) -> RewardPayload:
        return await _write(
            catalog.create_reward(
                info.context.db,
                info.context.principal,
                name=input.name,
                points_cost=input.points_cost,
                description=input.description,
                stock=input.stock,
                valid_from=input.valid_from,
                valid_until=input.valid_until,
                max_per_member=input.max_per_member,
            )
        )

    @mutation(
        "Change the fields of one of the calling partner's rewards given; the others stay as they are.",
        access=partner("catalog:write"),
        codes=(UserErrorCode.INVALID_ID, UserErrorCode.REWARD_NOT_FOUND, *TERMS_CODES),
    )
    async def update_reward(
        self, info: GraphQLInfo, input: Annotated[UpdateRewardInput, INPUT]
    ) -> RewardPayload:
        fields = (
            "name",
            "description",
            "points_cost",
            "stock",
            "valid_from",
            "valid_until",
            "max_per_member",
        )
        changes = {f: getattr(input, f) for f in fields if getattr(input, f) is not strawberry.UNSET}
        try:
            reward_id = _reward_id(input.reward_id)
        except DomainError as exc:
            return RewardPayload(user_errors=user_errors(exc.errors))
        return await _write(
            catalog.update_reward(info.context.db, info.context.principal, reward_id, changes)
        )

    @mutation(
        "Take one of the calling partner's rewards off sale; vouchers already issued stay valid."
        " Archiving an archived reward changes nothing.",
        access=partner("catalog:write"),
        codes=(UserErrorCode.INVALID_ID, UserErrorCode.REWARD_NOT_FOUND),
    )
    async def archive_reward(
        self, info: GraphQLInfo, input: Annotated[ArchiveRewardInput, INPUT]
    ) -> RewardPayload:
        try:
            reward_id = _reward_id(input.reward_id)
        except DomainError as exc:
            return RewardPayload(user_errors=user_errors(exc.errors))
        return await _write(catalog.archive_reward(info.context.db, info.context.principal, reward_id))
