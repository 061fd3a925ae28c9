"""GraphQL building blocks every service's schema uses: scalars, Money, userErrors, pages, context.

Services define their own types and resolvers; this module holds only what they all share so the
gateway can assemble one schema from them.
"""

from __future__ import annotations

import decimal
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Generic, NewType, TypeVar

import strawberry
from strawberry.types import Info

from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import UserError as DomainUserError
from shared.money import Money as DomainMoney
from shared.pagination import Page
from shared.parsing import MAX_BIGINT, MAX_DECIMAL_DIGITS, MIN_BIGINT, decimal_number, in_bigint, whole_number


def _parse_points(value: Any) -> int:
    """A JSON integer (or a string of ASCII digits) that fits BIGINT: what a balance column holds."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        number = whole_number(value)
    if number is None:
        raise ValueError(f"Points must be a whole number, like 250; got {_shown(value)}")
    if not in_bigint(number):
        raise ValueError(f"Points must be between {MIN_BIGINT} and {MAX_BIGINT}")
    return number


def _parse_decimal(value: Any) -> decimal.Decimal:
    """A string of ASCII digits with an optional point ("12.90"), or a JSON integer; a JSON float
    is refused, since by the time it arrives 0.1 has already become 0.1000000000000000055..."""
    if isinstance(value, float):
        raise ValueError(f'send {value!r} as a string, like "12.90": a JSON number with a point is a float')
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**MAX_DECIMAL_DIGITS:
        return decimal.Decimal(value)
    result = decimal_number(value) if isinstance(value, str) else None
    if result is None:
        raise ValueError(
            f'{_shown(value)} is not a decimal number: ASCII digits with an optional point, like "12.90"'
        )
    return result


_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")
EARLIEST_YEAR, LATEST_YEAR = 1900, 9998  # any offset still converts to UTC inside datetime's range


def _parse_datetime(value: Any) -> datetime:
    """ISO 8601 date and time, like 2026-11-01T09:30:00Z. A missing offset is the service's to
    refuse, naming the field (`occurredAt must carry a time zone offset`)."""
    hint = "is not an ISO 8601 date and time like 2026-11-01T09:30:00Z"
    if not isinstance(value, str) or not _DATETIME.match(value) or not value.isascii():
        raise ValueError(f"{_shown(value)} {hint}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{_shown(value)} {hint}") from None
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise ValueError(f"{_shown(value)} must lie between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return moment


def _shown(value: Any) -> str:
    """A value quoted in an error, cut short: an error never echoes a whole 256 KiB string."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


Points = NewType("Points", int)

# ASCII digits, at most nine per part: ten years is far below that, and timedelta overflows above.
_DURATION = re.compile(
    r"P(?:(?P<weeks>[0-9]{1,9})W|(?:(?P<days>[0-9]{1,9})D)?(?:T(?:(?P<hours>[0-9]{1,9})H)?"
    r"(?:(?P<minutes>[0-9]{1,9})M)?(?:(?P<seconds>[0-9]{1,9})S)?)?)"
)
MAX_DURATION = timedelta(days=3660)


def parse_duration(value: Any) -> timedelta:
    """ISO 8601 durations in weeks, days, hours, minutes and seconds ("P30D", "PT12H");
    months and years are refused: their length depends on where they start."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None or value in ("P", "PT") or value.endswith("T"):
        raise ValueError(f"{_shown(value)} is not an ISO 8601 duration like P30D or PT12H")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    try:
        duration = timedelta(**parts)
    except OverflowError:  # past timedelta's 999,999,999 days, so past ten years too
        duration = timedelta.max
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
    datetime: strawberry.scalar(
        name="DateTime",
        description=(
            "An instant in ISO 8601 with its offset: 2026-11-01T09:30:00Z or 2026-11-01T10:30:00+01:00."
        ),
        serialize=datetime.isoformat,
        parse_value=_parse_datetime,
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


@strawberry.type(description="An exact amount of money in a currency.")
class Money:
    amount: decimal.Decimal = strawberry.field(
        description="Exact, with at most the currency's decimals (prices per point carry up to 6)."
    )
    currency: str = strawberry.field(description="ISO 4217 code, upper case (EUR).")

    @classmethod
    def of(cls, money: DomainMoney | dict[str, str]) -> Money:
        if isinstance(money, dict):
            money = DomainMoney.from_dict(money)
        return cls(amount=money.amount, currency=money.currency)


@strawberry.input(description="An amount of money: a Decimal string and its currency.")
class MoneyInput:
    amount: decimal.Decimal = strawberry.field(
        description='Greater than zero, at most the currency\'s decimals ("12.90" in EUR, "1200" in'
        " JPY); sent as a string."
    )
    currency: str = strawberry.field(
        description="ISO 4217 code (EUR); case and spaces around it are ignored."
    )

    def to_domain(self) -> DomainMoney:
        return DomainMoney(amount=self.amount, currency=self.currency.strip().upper())


E = TypeVar("E", bound=enum.Enum)


def graphql_enum(
    domain: type[E], *, description: str, values: Mapping[E, str], name: str | None = None
) -> type[E]:
    """The GraphQL face of a domain enum (GraphQL enums are built from the domain's, never retyped),
    with every value described: a client reads what DRAFT or PAY_IN means in the schema itself."""
    missing = [member.name for member in domain if member not in values]
    if missing:
        raise ValueError(f"{domain.__name__}: no description for {', '.join(missing)}")
    wrapped = strawberry.enum(domain, name=name, description=description)
    for value in wrapped.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = values[domain[value.name]]
    return wrapped


graphql_enum(
    UserErrorCode,
    description="What a UserError is about, for code to switch on; the message is for people. Every code"
    " with the operations that return it: docs/errors.md.",
    values={code: f"{code.meaning} What to do: {code.action}" for code in UserErrorCode},
)


@strawberry.type(
    description="A problem with the input the caller can fix; nothing was written. A mutation answers"
    " them in its payload's userErrors (its other fields are then null); a query, as a BAD_USER_INPUT"
    " error with the same objects in extensions.userErrors. A point-moving mutation stores a refusal"
    " that depends on state (not enough points, an unknown member) under its idempotencyKey, and a"
    " retry gets the same answer; a refusal of the input itself is not stored, so the corrected"
    " request may reuse the key."
)
class UserError:
    code: UserErrorCode = strawberry.field(description="What is wrong, for code to switch on.")
    field: str | None = strawberry.field(
        description="The input field it concerns, as a dotted path from the input (amount.currency,"
        " csv); null when it concerns the request as a whole."
    )
    message: str = strawberry.field(
        description="What is wrong, in English, for people: may change at any time; switch on code."
    )

    @classmethod
    def of(cls, error: DomainUserError) -> UserError:
        return cls(code=error.code, field=error.field, message=error.message)


def user_errors(errors: list[DomainUserError]) -> list[UserError]:
    return [UserError.of(e) for e in errors]


@strawberry.interface(description="An object with a global ID (Relay).")
class Node:
    id: strawberry.ID = strawberry.field(
        description="Global ID: opaque, stable, and unique across types; Query.node finds it."
    )


@strawberry.type(description="Where a page of a list ends (Relay).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether a page follows this one.")
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; null when the page is empty."
    )


T = TypeVar("T")


@strawberry.type(description="One item of a page, with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Pass as `after` to read the items after this one.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of a list (Relay cursor connection): `first` items `after` a cursor.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The page's items, in the list's order.")
    page_info: PageInfo = strawberry.field(description="Whether more follow, and the cursor to ask for them.")

    @classmethod
    def of(cls, page: Page[Any], convert: Any) -> Connection[T]:
        return cls(
            edges=[Edge(cursor=c, node=convert(item)) for c, item in page.items],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )


First = Annotated[
    int | None,
    strawberry.argument(description="Page size, 1 to MAX_PAGE_SIZE (100); omitted: 20."),
]
After = Annotated[
    str | None,
    strawberry.argument(description="The endCursor of the previous page; omitted: the first page."),
]


@dataclass
class Context:
    """Per request: who is calling, the database, and request-scoped DataLoaders.

    Resolvers hand `db` to the services, which open (and commit) their own transactions: no
    resolver holds a session, and sibling resolvers, which run concurrently, never share one."""

    principal: Principal
    db: Database
    loaders: dict[str, Any] = field(default_factory=dict)
    # The process's live balance feed (services.ledger.balance_feed.BalanceFeed, on the process's
    # one listener), for subscriptions.
    balance_feed: Any = None


GraphQLInfo = Info[Context, None]
