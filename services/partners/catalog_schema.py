"""GraphQL for the rewards catalogue: partners manage theirs, everyone browses."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime

import strawberry

from services.partners import catalog
from shared.errors import DomainError
from shared.graphql_types import Connection, GraphQLInfo, Node, Points, UserError, user_errors
from shared.ids import require_global_id, to_global_id


@strawberry.type
class Reward(Node):
    partner_id: strawberry.ID
    name: str
    description: str
    points_cost: Points
    stock: int | None = strawberry.field(description="Null is unlimited.")
    valid_from: datetime
    valid_until: datetime | None
    max_per_member: int | None
    archived: bool

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


@strawberry.input
class CreateRewardInput:
    name: str
    points_cost: Points
    description: str = ""
    stock: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_per_member: int | None = None


@strawberry.input
class UpdateRewardInput:
    reward_id: strawberry.ID
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    points_cost: Points | None = strawberry.UNSET
    stock: int | None = strawberry.field(default=strawberry.UNSET, description="Null: unlimited.")
    valid_from: datetime | None = strawberry.UNSET
    valid_until: datetime | None = strawberry.UNSET
    max_per_member: int | None = strawberry.UNSET


@strawberry.input
class ArchiveRewardInput:
    reward_id: strawberry.ID


@strawberry.type
class RewardPayload:
    reward: Reward | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


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
    @strawberry.field(description="Rewards on sale (a partner also sees its own archived ones).")
    async def rewards(
        self,
        info: GraphQLInfo,
        partner_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
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
    @strawberry.mutation(description="Add a reward to the calling partner's catalogue.")
    async def create_reward(self, info: GraphQLInfo, input: CreateRewardInput) -> RewardPayload:
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

    @strawberry.mutation(description="Change the fields given; the others stay as they are.")
    async def update_reward(self, info: GraphQLInfo, input: UpdateRewardInput) -> RewardPayload:
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

    @strawberry.mutation(description="Take a reward off sale; vouchers already issued stay valid.")
    async def archive_reward(self, info: GraphQLInfo, input: ArchiveRewardInput) -> RewardPayload:
        try:
            reward_id = _reward_id(input.reward_id)
        except DomainError as exc:
            return RewardPayload(user_errors=user_errors(exc.errors))
        return await _write(catalog.archive_reward(info.context.db, info.context.principal, reward_id))
