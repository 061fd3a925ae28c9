"""What a promo code looks like: its alphabet, its check character, its normal form.

A code is `PREFIX` + a random body + one check character, all from ALPHABET: 29 characters with
no 0/O, 1/I/L or U/V, so a code read aloud, printed on a till receipt or typed by hand survives.
29 is prime, and the check character is the weighted sum (weights 1, 2, 3, … by position) of the
values before it, negated mod 29: any one wrong character changes the sum by (a - b) x weight,
and any swap of neighbours by (a - b) x 1, neither of which is 0 mod a prime larger than every
difference of values, so both are caught before any lookup (Luhn mod N misses the swap of the
first and the last character of its alphabet). Codes are at most MAX_CODE_LENGTH characters, so
the weights stay distinct and below 29.

Normal form (what is stored, unique, and looked up): upper case with hyphens and spaces removed,
so "sumr-7kq2 m9xh" finds SUMR7KQ2M9XH.
"""

from __future__ import annotations

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
VALUE = {char: i for i, char in enumerate(ALPHABET)}
MODULUS = len(ALPHABET)  # 29, a prime: the proof above needs it
BODY_LENGTH = 10  # 29^10 ≈ 4.2e14 codes: a guessed code is valid with odds of 1 in billions per batch
MAX_PREFIX = 8
MAX_CODE_LENGTH = MAX_PREFIX + BODY_LENGTH + 1  # 19 < 29: weights 1..18 are distinct mod 29


def check_character(payload: str) -> str:
    """The character that makes the weighted sum of the whole code 0 mod 29."""
    total = sum(weight * VALUE[char] for weight, char in enumerate(payload, start=1))
    weight = len(payload) + 1
    # find c with total + weight * c == 0 (mod 29): weight is invertible as 0 < weight < 29
    return ALPHABET[(-total * pow(weight, -1, MODULUS)) % MODULUS]


def new_code(prefix: str) -> str:
    """A fresh code in normal form: the prefix, BODY_LENGTH characters from `secrets`, the check."""
    payload = prefix + "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return payload + check_character(payload)


def normalise(text: str) -> str:
    """Upper case, hyphens and white space removed: how a code is stored and looked up."""
    return "".join(ch for ch in text.upper() if ch != "-" and not ch.isspace())


def is_well_formed(code: str) -> bool:
    """A normalised code whose characters are all from the alphabet and whose check holds: the test
    that answers PROMO_CODE_INVALID for a typo without touching the database."""
    if not 2 <= len(code) <= MAX_CODE_LENGTH or any(ch not in VALUE for ch in code):
        return False
    return check_character(code[:-1]) == code[-1]


def prefix_problem(prefix: str) -> str | None:
    """Why a (normalised) prefix cannot be used, or None. It is part of the checked code, so it
    must come from the same alphabet."""
    if len(prefix) > MAX_PREFIX:
        return f"prefix must be at most {MAX_PREFIX} characters"
    bad = sorted({ch for ch in prefix if ch not in VALUE})
    if bad:
        return (
            f"prefix may only hold the letters and digits {ALPHABET} (no 0/O, 1/I/L or U/V, which are"
            f" misread); not {''.join(bad)!r}"
        )
    return None
