"""A small time-bounded cache for rows that hot paths read and that rarely change."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class TimedCache:
    """Entries expire `ttl` seconds after loading; absent values (None) are not kept."""

    def __init__(self, max_entries: int = 10_000):
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable) -> Any:
        hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def put(self, key: Hashable, ttl: float, value: Any) -> None:
        if value is None or ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude, but bounded; the hot keys come straight back
        self._entries[key] = (time.monotonic() + ttl, value)

    async def get_or_load(
        self, key: Hashable, ttl: float, load: Callable[[], Awaitable[T | None]]
    ) -> T | None:
        hit = self.get(key)
        if hit is not None:
            return hit
        value = await load()
        self.put(key, ttl, value)
        return value

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def forget_where(self, predicate: Callable[[Hashable], bool]) -> None:
        """Forgets every entry whose key matches (a whole family, when a change notice was lost)."""
        for key in [k for k in self._entries if predicate(k)]:
            self._entries.pop(key, None)
