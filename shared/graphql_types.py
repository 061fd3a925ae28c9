"""GraphQL building blocks every service's schema uses: scalars, Money, userErrors, pages, context.

Services define their own types and resolvers; this module holds only what they all share so the
gateway can assemble one schema from them.
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, NewType, TypeVar

import strawberry
from strawberry.types import Info

from shared.access import Principal
from shared.database import Database
from shared.errors import UserError as DomainUserError
from shared.money import Money as DomainMoney
from shared.money import to_decimal
from shared.pagination import Page


def _parse_points(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("Points must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise ValueError("Points must be a whole number")


def _parse_decimal(value: Any) -> decimal.Decimal:
    result = to_decimal(value if not isinstance(value, float) else repr(value))
    if result is None:
        raise ValueError(f"{value!r} is not a decimal number")
    return result


Points = NewType("Points", int)

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W|(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+)S)?)?)$"
)
MAX_DURATION = timedelta(days=3660)


def parse_duration(value: Any) -> timedelta:
    """ISO 8601 durations in weeks, days, hours, minutes and seconds ("P30D", "PT12H");
    months and years are refused: their length depends on where they start."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or value in ("P", "PT") or value.endswith("T"):
        raise ValueError(f"{value!r} is not an ISO 8601 duration like P30D or PT12H")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    duration = timedelta(**parts)
    if duration > MAX_DURATION:
        raise ValueError("durations are limited to ten years")
    return duration


def format_duration(value: timedelta) -> str:
    return f"PT{int(value.total_seconds())}S"


# Given to the schema's StrawberryConfig(scalar_map=...): how Points and Decimal cross the wire.
SCALAR_MAP: dict[object, Any] = {
    Points: strawberry.scalar(
        name="Points",
        description="A whole number of points, 64-bit signed, sent as a JSON integer.",
        serialize=int,
        parse_value=_parse_points,
    ),
    timedelta: strawberry.scalar(
        name="Duration",
        description='An ISO 8601 duration in weeks, days, hours, minutes, seconds: "P30D", "PT12H".',
        serialize=format_duration,
        parse_value=parse_duration,
    ),
    decimal.Decimal: strawberry.scalar(
        name="Decimal",
        description='An exact decimal number, sent as a string ("12.90") so no float rounds it.',
        serialize=str,
        parse_value=_parse_decimal,
    ),
}


@strawberry.type
class Money:
    amount: decimal.Decimal
    currency: str

    @classmethod
    def of(cls, money: DomainMoney | dict[str, str]) -> Money:
        if isinstance(money, dict):
            money = DomainMoney.from_dict(money)
        return cls(amount=money.amount, currency=money.currency)


@strawberry.input
class MoneyInput:
    amount: decimal.Decimal
    currency: str

    def to_domain(self) -> DomainMoney:
        return DomainMoney(amount=self.amount, currency=self.currency.strip().upper())


@strawberry.type
class UserError:
    """A problem the caller can fix: `field` names the input field (dotted path) it concerns."""

    code: str
    field: str | None
    message: str

    @classmethod
    def of(cls, error: DomainUserError) -> UserError:
        return cls(code=error.code, field=error.field, message=error.message)


def user_errors(errors: list[DomainUserError]) -> list[UserError]:
    return [UserError.of(e) for e in errors]


@strawberry.interface(description="An object with a global ID (Relay).")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


T = TypeVar("T")


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[Any], convert: Any) -> Connection[T]:
        return cls(
            edges=[Edge(cursor=c, node=convert(item)) for c, item in page.items],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )


@dataclass
class Context:
    """Per request: who is calling, the database, and request-scoped DataLoaders.

    Resolvers hand `db` to the services, which open (and commit) their own transactions: no
    resolver holds a session, and sibling resolvers, which run concurrently, never share one."""

    principal: Principal
    db: Database
    loaders: dict[str, Any] = field(default_factory=dict)


GraphQLInfo = Info[Context, None]
