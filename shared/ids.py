"""Identifiers the outside world sees: Relay global IDs and member numbers."""

from __future__ import annotations

import base64
import binascii
import secrets

from shared.error_codes import UserErrorCode
from shared.parsing import whole_number


def to_global_id(type_name: str, local_id: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{local_id}".encode()).decode().rstrip("=")


def global_id_sql(type_name: str, id_sql: str) -> str:
    """The SQL expression of `to_global_id(type_name, <id_sql>)`, for a statement that builds an
    ID of a row it is itself inserting (the earn's one statement writes its event in the same
    statement as its entry). Base64 in PostgreSQL wraps lines only past 76 characters, far beyond
    a type name and a BIGINT; a test pins it to `to_global_id`."""
    if not type_name.isidentifier():
        raise ValueError(f"not a GraphQL type name: {type_name!r}")
    return (
        f"rtrim(translate(encode(convert_to('{type_name}:' || ({id_sql})::text, 'UTF8'), 'base64'),"
        " '+/', '-_'), '=')"
    )


def from_global_id(global_id: str, expected_type: str | None = None) -> tuple[str, int] | None:
    """(type, id) of a global ID, or None when it is not one (or not of the expected type)."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, raw = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    local_id = whole_number(raw)  # ASCII digits within BIGINT, or no row can have it
    if local_id is None or local_id <= 0:
        return None
    if expected_type is not None and type_name != expected_type:
        return None
    return type_name, local_id


def luhn_check_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def new_member_number() -> str:
    """12 digits, the last a Luhn check digit, so a mistyped number is caught at the till."""
    body = str(secrets.randbelow(9 * 10**10) + 10**10)  # 11 digits, no leading zero
    return body + luhn_check_digit(body)


def is_valid_member_number(value: str) -> bool:
    return (
        len(value) == 12 and value.isascii() and value.isdigit() and luhn_check_digit(value[:-1]) == value[-1]
    )


# No 0/O, 1/I/L or U/V: a voucher read aloud or copied by hand survives.
VOUCHER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"


def _voucher_check(body: str) -> str:
    """Luhn mod N: catches any single wrong character and any swap of neighbours."""
    n = len(VOUCHER_ALPHABET)
    total, factor = 0, 2
    for char in reversed(body):
        addend = factor * VOUCHER_ALPHABET.index(char)
        total += addend // n + addend % n
        factor = 1 if factor == 2 else 2
    return VOUCHER_ALPHABET[(n - total % n) % n]


def new_voucher_code() -> str:
    """12 random characters and a check character, shown in groups: 7KQ2-M9WZ-C4HT-R."""
    body = "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(12))
    code = body + _voucher_check(body)
    return "-".join([code[0:4], code[4:8], code[8:12], code[12:]])


def is_valid_voucher_code(code: str) -> bool:
    raw = code.replace("-", "").upper()
    return len(raw) == 13 and all(c in VOUCHER_ALPHABET for c in raw) and _voucher_check(raw[:-1]) == raw[-1]


def require_global_id(value: object, type_name: str, field: str) -> int:
    """The local id inside a global ID of `type_name`, or a user error naming `field`."""
    from shared.errors import DomainError

    decoded = from_global_id(str(value), type_name)
    if decoded is None:
        raise DomainError.single(UserErrorCode.INVALID_ID, f"{field} is not a {type_name} id", field)
    return decoded[1]
