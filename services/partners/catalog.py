"""A partner's rewards catalogue: what members can buy with points at that partner.

Stock is decremented in the redeeming transaction with a guarded UPDATE (`stock >= quantity`), so
concurrent redemptions can never take it below zero; a cancelled redemption puts it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.models import Reward
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator
from shared.pagination import Page, decode_cursor, make_page, page_size
from shared.sql import DbConnection, Sql

MAX_NAME = 200
MAX_DESCRIPTION = 4_000
MAX_COST = 10**9


@dataclass(frozen=True)
class RewardView:
    id: int
    partner_id: int
    name: str
    description: str
    points_cost: int
    stock: int | None
    valid_from: datetime
    valid_until: datetime | None
    max_per_member: int | None
    archived_at: datetime | None

    def available_at(self, now: datetime) -> bool:
        return (
            self.archived_at is None
            and self.valid_from <= now
            and (self.valid_until is None or now < self.valid_until)
        )


def _view(row: Reward) -> RewardView:
    return RewardView(
        id=row.id,
        partner_id=row.partner_id,
        name=row.name,
        description=row.description,
        points_cost=row.points_cost,
        stock=row.stock,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        max_per_member=row.max_per_member,
        archived_at=row.archived_at,
    )


def _check(v: Validator, terms: dict[str, Any]) -> None:
    if "name" in terms:
        v.text(terms["name"], "name", max_length=MAX_NAME)
    if terms.get("description") is not None:
        v.text(terms["description"], "description", max_length=MAX_DESCRIPTION, required=False)
    if "points_cost" in terms:
        v.check(
            terms["points_cost"] is not None and 0 < terms["points_cost"] <= MAX_COST,
            "pointsCost",
            UserErrorCode.INVALID_AMOUNT,
            f"pointsCost must be between 1 and {MAX_COST}",
        )
    if terms.get("stock") is not None:
        v.check(terms["stock"] >= 0, "stock", UserErrorCode.INVALID_AMOUNT, "stock must not be negative")
    if terms.get("max_per_member") is not None:
        v.check(
            terms["max_per_member"] > 0,
            "maxPerMember",
            UserErrorCode.INVALID_AMOUNT,
            "maxPerMember must be at least 1",
        )
    start, end = terms.get("valid_from"), terms.get("valid_until")
    if (
        v.instant(start, "validFrom")
        and v.instant(end, "validUntil")
        and start is not None
        and end is not None
    ):
        v.check(end > start, "validUntil", UserErrorCode.INVALID, "validUntil must be after validFrom")


async def create_reward(
    db: Database,
    principal: Principal,
    *,
    name: str,
    points_cost: int,
    description: str = "",
    stock: int | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    max_per_member: int | None = None,
) -> RewardView:
    partner_id = principal.require_partner("catalog:write")
    terms = {
        "name": name,
        "description": description,
        "points_cost": points_cost,
        "stock": stock,
        "valid_from": valid_from or clock.now(),
        "valid_until": valid_until,
        "max_per_member": max_per_member,
    }
    v = Validator()
    _check(v, terms)
    v.raise_if_any()
    async with db.sessions() as session, session.begin():
        reward = Reward(partner_id=partner_id, **{**terms, "name": name.strip()})
        session.add(reward)
        await session.flush()
        return _view(reward)


async def _own_reward(session: AsyncSession, principal: Principal, reward_id: int) -> Reward:
    partner_id = principal.require_partner("catalog:write")
    reward = await session.scalar(
        select(Reward).where(Reward.id == reward_id, Reward.partner_id == partner_id).with_for_update()
    )
    if reward is None:  # another partner's reward looks exactly like none
        raise DomainError.single(UserErrorCode.REWARD_NOT_FOUND, "no such reward", "rewardId")
    return reward


async def update_reward(
    db: Database, principal: Principal, reward_id: int, changes: dict[str, Any]
) -> RewardView:
    """Changes only the fields given; `stock` or `valid_until` given as None means unlimited."""
    async with db.sessions() as session, session.begin():
        reward = await _own_reward(session, principal, reward_id)
        merged = {"valid_from": reward.valid_from, "valid_until": reward.valid_until, **changes}
        v = Validator()
        _check(v, merged)
        v.raise_if_any()
        if changes:
            await session.execute(update(Reward).where(Reward.id == reward_id).values(**changes))
            await session.refresh(reward)
        return _view(reward)


async def archive_reward(db: Database, principal: Principal, reward_id: int) -> RewardView:
    async with db.sessions() as session, session.begin():
        reward = await _own_reward(session, principal, reward_id)
        if reward.archived_at is None:
            reward.archived_at = clock.now()
            await session.flush()
        return _view(reward)


async def list_rewards(
    db: Database,
    principal: Principal,
    *,
    partner_id: int | None,
    first: int | None,
    after: str | None,
) -> Page[RewardView]:
    """Anyone with a token browses what is on sale; a partner also sees its own archived and
    not-yet-valid rewards, an admin everyone's."""
    size = page_size(first)
    stmt = select(Reward).order_by(Reward.id).limit(size + 1)
    if partner_id is not None:
        stmt = stmt.where(Reward.partner_id == partner_id)
    position = decode_cursor(after)
    if position is not None:
        stmt = stmt.where(Reward.id > position)
    if not principal.is_admin:
        now = clock.now()
        on_sale = (
            Reward.archived_at.is_(None)
            & (Reward.valid_from <= now)
            & (Reward.valid_until.is_(None) | (Reward.valid_until > now))
        )
        stmt = stmt.where(on_sale | (Reward.partner_id == principal.partner_id))
    async with db.sessions() as session:
        rows = [_view(r) for r in (await session.scalars(stmt)).all()]
    return make_page(rows, size, lambda r: r.id)


REWARD = Sql(
    "SELECT id, partner_id, name, description, points_cost, stock, valid_from, valid_until,"
    " max_per_member, archived_at FROM rewards WHERE id = :id"
)
TAKE_STOCK = Sql(
    "UPDATE rewards SET stock = stock - :q WHERE id = :id AND stock IS NOT NULL AND stock >= :q"
    " RETURNING stock"
)
RETURN_STOCK = Sql("UPDATE rewards SET stock = stock + :q WHERE id = :id AND stock IS NOT NULL")


async def reward_for_sale(
    conn: DbConnection, reward_id: int, partner_id: int | None, now: datetime
) -> RewardView:
    """The reward, if the calling partner sells it (any partner, for `partner_id` None: a member
    buying in their app) and it is on sale now."""
    row = await REWARD.fetchrow(conn, id=reward_id)
    if row is None or (partner_id is not None and row["partner_id"] != partner_id):
        raise DomainError.single(UserErrorCode.REWARD_NOT_FOUND, "no such reward at this partner", "rewardId")
    reward = RewardView(**dict(row))
    if not reward.available_at(now):
        raise DomainError.single(
            UserErrorCode.REWARD_NOT_AVAILABLE, "this reward is not on sale now", "rewardId"
        )
    return reward


async def take_stock(conn: DbConnection, reward: RewardView, quantity: int) -> None:
    """Decrements stock in the caller's transaction; OUT_OF_STOCK writes nothing."""
    if reward.stock is None:
        return
    if await TAKE_STOCK.fetchval(conn, id=reward.id, q=quantity) is None:
        raise DomainError.single(UserErrorCode.OUT_OF_STOCK, "not enough of this reward is left", "quantity")


async def return_stock(conn: DbConnection, reward_id: int, quantity: int) -> None:
    await RETURN_STOCK.execute(conn, id=reward_id, q=quantity)
