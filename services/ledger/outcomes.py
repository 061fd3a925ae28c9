"""What every ledger operation shares: its answer, input checks, and finding the member."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.members import service as members
from shared.error_codes import UserErrorCode
from shared.errors import UserError, Validator
from shared.money import MAX_AMOUNT, Money, decimals_of, is_known_currency, minor_units
from shared.sql import DbConnection

MAX_KEY = 200
MAX_ORDER_ID = 200
MAX_POINTS = 10**12


@dataclass(frozen=True)
class Outcome:
    """What a mutation answered: its result, or the errors the caller can fix."""

    result: dict[str, Any] | None
    errors: list[UserError]
    # Answered from the idempotency key's stored answer (bulk earns say so; the import counts it).
    replayed: bool = False

    @classmethod
    def of(cls, response: dict[str, Any]) -> Outcome:
        return cls(
            result=response.get("ok"),
            errors=[UserError.from_dict(e) for e in response.get("errors", [])],
        )


def check_common(v: Validator, idempotency_key: str, order_id: str | None) -> None:
    v.text(idempotency_key, "idempotencyKey", max_length=MAX_KEY)
    if order_id is not None:
        v.text(order_id, "orderId", max_length=MAX_ORDER_ID)


def check_money(v: Validator, money: Money, field: str, *, required_currency: str | None) -> bool:
    """Positive, in a known currency, with no more decimals than the currency has."""
    if not v.check(
        is_known_currency(money.currency),
        f"{field}.currency",
        UserErrorCode.UNKNOWN_CURRENCY,
        f"{field}.currency {money.currency!r} is not a known ISO 4217 code",
    ):
        return False
    amount_field = f"{field}.amount"
    ok = v.check(
        money.amount > 0,
        amount_field,
        UserErrorCode.INVALID_AMOUNT,
        f"{amount_field} must be greater than zero",
    )
    ok = ok and v.check(
        money.amount <= MAX_AMOUNT,
        amount_field,
        UserErrorCode.INVALID_AMOUNT,
        f"{amount_field} must be at most {MAX_AMOUNT}",
    )
    ok = ok and v.check(
        decimals_of(money.amount) <= minor_units(money.currency),
        amount_field,
        UserErrorCode.INVALID_AMOUNT,
        f"{amount_field} has more decimals than {money.currency} allows ({minor_units(money.currency)})",
    )
    if ok and required_currency is not None:
        ok = v.check(
            money.currency == required_currency,
            f"{field}.currency",
            UserErrorCode.CURRENCY_MISMATCH,
            f"{field}.currency must be {required_currency}",
        )
    return ok


async def linked_member(conn: DbConnection, member_number: str, partner_id: int) -> int:
    """The member a partner may spend for: spending needs a link, and a member not linked to the
    partner gets exactly the answer an unknown number gets (MEMBER_NOT_FOUND), so a partner
    learns nothing of members that are not its own."""
    found = await members.member_at_partner(conn, member_number, partner_id)
    if found is None or not found.enrolled:
        raise members.member_not_found()
    return found.member_id
