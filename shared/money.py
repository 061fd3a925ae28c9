"""Money and points as exact values.

Money is `Decimal` with a currency whose ISO 4217 minor unit decides how many decimals an amount
may carry; points are plain `int`. Floats never appear: a float cannot say 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum

# ISO 4217 minor units of the currencies a coalition is likely to meet. A currency missing here
# is refused as unknown rather than guessed.
MINOR_UNITS: dict[str, int] = {
    "AED": 2,
    "ARS": 2,
    "AUD": 2,
    "BGN": 2,
    "BHD": 3,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CLP": 0,
    "CNY": 2,
    "COP": 2,
    "CZK": 2,
    "DKK": 2,
    "EGP": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "IDR": 2,
    "ILS": 2,
    "INR": 2,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MAD": 2,
    "MXN": 2,
    "MYR": 2,
    "NOK": 2,
    "NZD": 2,
    "OMR": 3,
    "PHP": 2,
    "PLN": 2,
    "QAR": 2,
    "RON": 2,
    "SAR": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TND": 3,
    "TRY": 2,
    "TWD": 2,
    "UAH": 2,
    "USD": 2,
    "VND": 0,
    "ZAR": 2,
}

MAX_AMOUNT = Decimal("1000000000")  # one purchase above a billion is a typo, not a sale
PRICE_DECIMALS = 6


class Rounding(StrEnum):
    FLOOR = "FLOOR"
    HALF_UP = "HALF_UP"


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def as_dict(self) -> dict[str, str]:
        return {"amount": str(self.amount), "currency": self.currency}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Money:
        return cls(Decimal(data["amount"]), data["currency"])


def minor_units(currency: str) -> int:
    return MINOR_UNITS[currency]


def is_known_currency(currency: str) -> bool:
    return currency in MINOR_UNITS


def decimals_of(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def to_decimal(value: object) -> Decimal | None:
    """A Decimal from a string or Decimal, or None when it is not a finite number."""
    if isinstance(value, float):
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def quantize_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def points_for(amount: Decimal, earn_rate: Decimal, rounding: str) -> int:
    """Points for a whole purchase: rounded once per purchase, never per line."""
    raw = amount * earn_rate
    mode = ROUND_HALF_UP if rounding == Rounding.HALF_UP else ROUND_FLOOR
    return int(raw.quantize(Decimal(1), rounding=mode))


def value_of_points(points: int, price: Decimal, currency: str) -> Decimal:
    return quantize_money(Decimal(points) * price, currency)
