"""How text from outside becomes values: the one place that decides what a whole number, a decimal
number and a storable string look like, so GraphQL scalars, CSV files and services agree.

Python's parsers are generous where a ledger must not be: `int()` takes "١٢", " 5 " and "+5";
`str.isdigit()` passes "²", which `int()` then refuses; `Decimal()` takes "1e3", "NaN" and spaces.
PostgreSQL is strict the other way: `text` cannot hold NUL or a lone surrogate, and BIGINT stops
at 2**63 - 1. So numbers are ASCII digits only, within what the column holds, and text is checked
for what cannot be stored or would mislead a reader, before anything is written. Each function
answers with the value or `None`; the caller names the field in its error.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from email_validator import EmailNotValidError, validate_email

MIN_BIGINT = -(2**63)
MAX_BIGINT = 2**63 - 1
# A decimal longer than this is not an amount or a price; Decimal's context (28 digits) would
# refuse to round it later, far from the field that carried it.
MAX_DECIMAL_DIGITS = 28

_WHOLE = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
# C0 controls, DEL, C1 controls; bidirectional embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069), which make text read differently from what it holds ("Trojan Source");
# surrogates, which only exist unpaired in a Python str (JSON's "\ud800") and cannot be stored.
_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def in_bigint(value: int) -> bool:
    return MIN_BIGINT <= value <= MAX_BIGINT


def whole_number(text: str) -> int | None:
    """An integer written in ASCII digits (an optional leading minus), that fits BIGINT."""
    if len(text) > 20 or not _WHOLE.fullmatch(text):
        return None
    value = int(text)
    return value if in_bigint(value) else None


def decimal_number(text: str) -> Decimal | None:
    """A decimal written in ASCII digits with an optional minus and point: no exponent, no
    spaces, no NaN or Infinity, at most MAX_DECIMAL_DIGITS digits."""
    if not _DECIMAL.fullmatch(text) or sum(c.isdigit() for c in text) > MAX_DECIMAL_DIGITS:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal reads
        return None


def text_problem(value: str) -> str | None:
    """What makes `value` unfit to store and show, in words, or None when it is fine."""
    found = _REFUSED.search(value)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"holds a lone surrogate (U+{code:04X}); send valid UTF-16 pairs or UTF-8"
    if 0x202A <= code <= 0x2069:
        return f"must not contain bidirectional control characters (U+{code:04X})"
    return f"must not contain control characters (U+{code:04X})"


MAX_EMAIL = 254  # RFC 5321's limit on a forward path


def email_address(text: str) -> str:
    """The address in its normalized form (domain lower-cased and IDNA-checked), or ValueError
    saying what is wrong with it. Syntax only: whether mail is delivered there is the member's
    confirmation to prove, not a DNS lookup in a request."""
    if len(text) > MAX_EMAIL:
        raise ValueError(f"must be at most {MAX_EMAIL} characters")
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
