"""Cursor pages, the one way every list is read, so no query can ask for everything."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.parsing import whole_number
from shared.settings import get_settings

T = TypeVar("T")
# What a list returns when `first` is not given (the cost limit assumes the same).
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[tuple[str, T]]  # (cursor, item)
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.items[-1][0] if self.items else None


Position = int | tuple[int, ...]


def encode_cursor(position: Position) -> str:
    parts = position if isinstance(position, tuple) else (position,)
    raw = "c:" + ",".join(str(p) for p in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor_parts(cursor: str | None, count: int) -> tuple[int, ...] | None:
    """The key a cursor carries (`count` integers), or None for the first page."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        prefix, _, value = raw.partition(":")
        numbers = [whole_number(p) for p in value.split(",")]  # None past BIGINT: no row is there
        parts = tuple(n for n in numbers if n is not None)
        if prefix != "c" or len(numbers) != count or len(parts) != count:
            raise ValueError(prefix)
        return parts
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise DomainError.single(
            UserErrorCode.INVALID_CURSOR, "after is not a cursor from this list", "after"
        ) from exc


def decode_cursor(cursor: str | None) -> int | None:
    parts = decode_cursor_parts(cursor, 1)
    return parts[0] if parts else None


def page_size(first: int | None) -> int:
    limit = get_settings().max_page_size
    if first is None:
        return min(DEFAULT_PAGE_SIZE, limit)
    if first < 1 or first > limit:
        raise DomainError.single(
            UserErrorCode.INVALID_PAGE_SIZE, f"first must be between 1 and {limit}", "first"
        )
    return first


def make_page(rows: list[T], size: int, position_of: Callable[[T], Position]) -> Page[T]:
    """Rows fetched with LIMIT size + 1 become a page; the extra row only says there is more."""
    has_next = len(rows) > size
    kept = rows[:size]
    return Page(items=[(encode_cursor(position_of(r)), r) for r in kept], has_next_page=has_next)
