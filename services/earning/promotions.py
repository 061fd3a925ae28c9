"""Promotions as the engine reads them: when one is live, which lines it concerns, what it gives.

Live at an instant `t`: starts_at <= t < ends_at (no end: open) and, with a recurrence, `t` is in
one of its occurrences [start, start + recurrence_seconds). Occurrences are wall-clock times in
the partner's time zone (a coalition promotion: UTC): the RRULE is expanded by python-dateutil
from dtstart = starts_at in that zone, so "every Tuesday 14:00-17:00 Europe/Paris" is 14:00 local
on both sides of a DST change, and an occurrence's end is its start plus the duration on the wall
clock (a 3-hour window is 14:00-17:00 local even on the night the clocks move). The RRULE takes
the minutes and seconds it does not set (BYMINUTE, BYSECOND) from starts_at.

Conditions, all that are set must hold: minimum spend (the purchase's amount, in the partner's
currency; a coalition promotion's minSpend is in its own currency and never holds at a partner in
another one), categories / SKUs (the promotion concerns the matching lines only: a line matches
when its category is listed or its SKU is; none matching, it does not apply), channel, first
purchase at this partner, member not seen (no earn or redemption at this partner) for N days, and
a promo code (the promotion applies only when its id is among those the purchase's codes unlock).

Effects, exactly one, on the matching lines: a multiplier gives the extra
`line points x (multiplier - 1)` (line points: what the line earned under the earn rules, step 1);
a bonus gives N points (split over the matching lines by amount, for refunds by line); a percent
gives `amount of the matching lines x percent / 100` points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from services.earning.models import Channel

ZERO = Decimal(0)
HUNDRED = Decimal(100)
COALITION_ZONE = "UTC"

COLUMNS = (
    "id, partner_id, name, starts_at, ends_at, recurrence, recurrence_seconds, min_spend,"
    " min_spend_currency, categories, skus, channels, first_purchase, inactive_days, requires_code,"
    " multiplier, bonus_points, percent_of_amount, budget_points, spent_points, per_member_limit,"
    " stackable, priority, archived_at, created_at"
)


def parse_rule(text: str, starts_at: datetime, time_zone: str) -> rrule:
    """The RRULE expanded from starts_at in the zone; ValueError (dateutil's message) if bad."""
    start = starts_at.astimezone(ZoneInfo(time_zone))
    parsed = rrulestr(text, dtstart=start, cache=True)
    if not isinstance(parsed, rrule):
        raise ValueError("one RRULE, not a set of rules")
    return parsed


@dataclass(frozen=True)
class Promotion:
    id: int
    partner_id: int | None
    name: str
    starts_at: datetime
    ends_at: datetime | None
    recurrence: str | None
    recurrence_seconds: int | None
    min_spend: Decimal | None
    min_spend_currency: str | None
    categories: tuple[str, ...] | None
    skus: tuple[str, ...] | None
    channels: tuple[str, ...] | None
    first_purchase: bool
    inactive_days: int | None
    requires_code: bool
    multiplier: Decimal | None
    bonus_points: int | None
    percent_of_amount: Decimal | None
    budget_points: int | None
    spent_points: int
    per_member_limit: int | None
    stackable: bool
    priority: int
    archived_at: datetime | None
    created_at: datetime
    time_zone: str = COALITION_ZONE  # the partner's, for its recurrence (UTC for the coalition's)

    @classmethod
    def of(cls, row: Mapping[str, Any], time_zone: str = COALITION_ZONE) -> Promotion:
        values = {name: row[name] for name in cls.__dataclass_fields__ if name != "time_zone"}
        for key in ("categories", "skus", "channels"):
            values[key] = tuple(values[key]) if values[key] is not None else None
        return cls(**values, time_zone=time_zone if row["partner_id"] is not None else COALITION_ZONE)

    @property
    def coalition(self) -> bool:
        return self.partner_id is None

    @property
    def guarded(self) -> bool:
        """Needs the earn's decide path: its award depends on rows read under the member's lock
        (the budget, the member's awards, purchases and activity at the partner)."""
        return (
            self.budget_points is not None
            or self.per_member_limit is not None
            or self.first_purchase
            or self.inactive_days is not None
        )

    @cached_property
    def _rule(self) -> rrule | None:
        if self.recurrence is None:
            return None
        return parse_rule(self.recurrence, self.starts_at, self.time_zone)

    def live_at(self, at: datetime) -> bool:
        if at < self.starts_at or (self.ends_at is not None and at >= self.ends_at):
            return False
        rule = self._rule
        if rule is None:
            return True
        local = at.astimezone(ZoneInfo(self.time_zone))
        start = rule.before(local, inc=True)
        if start is None:
            return False
        # Wall-clock arithmetic (same tzinfo): the window keeps its local hours across DST.
        end = start + timedelta(seconds=self.recurrence_seconds or 0)
        return local < end

    def matching(self, lines: Sequence[Any]) -> tuple[int, ...]:
        if self.categories is None and self.skus is None:
            return tuple(range(len(lines)))
        cats, skus = set(self.categories or ()), set(self.skus or ())
        return tuple(
            i
            for i, line in enumerate(lines)
            if line.category in cats or (line.sku is not None and line.sku in skus)
        )


@dataclass(frozen=True)
class MemberFacts:
    """What the guarded conditions read about the member at the partner (under the wallet lock)."""

    bought_before: bool = True  # unknown: the first-purchase condition does not hold
    last_seen: datetime | None = None
    known: bool = False  # False on the fast path: first-purchase / not-seen conditions fail


@dataclass(frozen=True)
class PromoContext:
    """The engine's promotion inputs beyond the basket: codes' unlocks, the member's facts, and the
    promotions left out (budget spent, per-member limit reached)."""

    at: datetime
    currency: str
    channel: Channel | None = None
    unlocked: frozenset[int] = frozenset()
    facts: MemberFacts = field(default_factory=MemberFacts)
    excluded: frozenset[int] = frozenset()


def conditions_hold(promo: Promotion, amount: Decimal, ctx: PromoContext) -> bool:
    if promo.id in ctx.excluded:
        return False
    if promo.requires_code and promo.id not in ctx.unlocked:
        return False
    if promo.min_spend is not None:
        if promo.min_spend_currency is not None and promo.min_spend_currency != ctx.currency:
            return False
        if amount < promo.min_spend:
            return False
    if promo.channels is not None and (ctx.channel is None or ctx.channel.value not in promo.channels):
        return False
    if promo.first_purchase and (not ctx.facts.known or ctx.facts.bought_before):
        return False
    if promo.inactive_days is not None:
        if not ctx.facts.known:
            return False
        seen = ctx.facts.last_seen
        if seen is not None and ctx.at - seen < timedelta(days=promo.inactive_days):
            return False
    return True


def line_extras(
    promo: Promotion, lines: Sequence[Any], line_exact: Sequence[Decimal], matching: Sequence[int]
) -> dict[int, Decimal]:
    """The exact points the promotion adds to each matching line (see the module's docstring)."""
    if promo.multiplier is not None:
        return {i: line_exact[i] * (promo.multiplier - 1) for i in matching}
    if promo.percent_of_amount is not None:
        return {i: lines[i].amount * promo.percent_of_amount / HUNDRED for i in matching}
    bonus = Decimal(promo.bonus_points or 0)
    total = sum((lines[i].amount for i in matching), ZERO)
    if total <= 0:  # lines of no amount: the bonus goes to the first matching line
        return {i: (bonus if n == 0 else ZERO) for n, i in enumerate(matching)}
    return {i: bonus * lines[i].amount / total for i in matching}
