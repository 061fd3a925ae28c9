"""The one source of "now", so tests can move time instead of sleeping."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

# For drills and tests that run the real processes (a worker in a subprocess) at another time:
# the whole process sees the wall clock shifted by this many seconds. Never set in production.
_OFFSET = timedelta(seconds=float(os.environ.get("COALITION_CLOCK_OFFSET_SECONDS") or 0))


def _wall() -> datetime:
    return datetime.now(UTC) + _OFFSET


_now: Callable[[], datetime] = _wall

# How far apart two honest clocks may be: a client's "now" a little ahead of ours is not "the
# future", and a contract change a little behind ours is not "the past".
CLOCK_SKEW = timedelta(minutes=5)


def now() -> datetime:
    return _now()


def set_clock(source: Callable[[], datetime] | None) -> None:
    """Replace the clock (tests); None restores the wall clock."""
    global _now
    _now = source if source is not None else _wall


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months later, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    import calendar

    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
