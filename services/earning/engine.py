"""The earn engine: what a purchase earns under the rules in force at its occurredAt, and why.

Pure computation (no database): `evaluate` runs an ordered pipeline of steps over the purchase's
lines. Each step may add breakdown items, each an exact Decimal number of points with the rule
or the promotion that caused it and the lines it concerns. The order, documented in
docs/decisions.md and in the schema:

1. per line, the most specific rule wins: a SKU rule, else a category rule, else the partner's
   base rate (earnRate per unit of currency). A rule has a multiplier of the base rate (amount x
   earnRate x multiplier; "0" is an exclusion: the line earns nothing) or a rate per unit
   (quantity x pointsPerUnit). Of two rules for the same SKU (or category), the newer wins;
2. minimum spend: a purchase whose amount is below the highest minSpend in force earns nothing;
3. promotions live at occurredAt whose conditions hold (services/earning/promotions.py), each an
   item of the extra points on its matching lines, not for a purchase below a minimum spend. All
   stackable ones apply; of the non-stackable ones only the best for the member: the most points,
   then the higher priority, then the newer (higher) id;
3b. the member's tier: its multiplier on the base points (step 1's line points, after minimum
   spend), an item of (multiplier - 1) x those points, issued by the partner like base points;
4. cap per purchase: at most the lowest capPerPurchase in force;
5. caps per member: at most what is left of the lowest capPerMemberDay / capPerMemberMonth, after
   what the member earned at the partner that day / month (the partner's time zone);
6. rounding, once, of the exact total (the partner's earnRounding, floor by default): 10 lines
   never earn less than their total would. Items and lines get whole points by rounding the
   running total after each (the differences of cumulative rounding), so both sum exactly to the
   purchase's points.

Invariants: points >= 0; sum(item.points) == points; sum(line points) == points; a line excluded
(multiplier 0) or in a group with no points gets 0, so refunding it takes back nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from services.earning.models import RuleKind
from services.earning.promotions import PromoContext, Promotion, conditions_hold, line_extras
from services.earning.rules import RuleVersion
from shared.money import Rounding

ZERO = Decimal(0)


@dataclass(frozen=True)
class Line:
    """One line of a purchase; a purchase sent without lines is one line of its amount."""

    sku: str | None
    category: str | None
    quantity: int
    amount: Decimal


@dataclass(frozen=True)
class Basket:
    lines: tuple[Line, ...]
    amount: Decimal

    @classmethod
    def single(cls, amount: Decimal) -> Basket:
        return cls((Line(None, None, 1, amount),), amount)


@dataclass(frozen=True)
class Terms:
    """The partner's base terms and the rules in force at the purchase's occurredAt."""

    earn_rate: Decimal
    rounding: str
    rules: tuple[RuleVersion, ...]
    promotions: tuple[Promotion, ...] = ()  # live at occurredAt (partner's and coalition's)

    @property
    def member_caps(self) -> bool:
        return any(r.cap_per_member_day is not None or r.cap_per_member_month is not None for r in self.rules)


@dataclass(frozen=True)
class MemberHistory:
    """What the member earned at the partner in the purchase's day and month (net of refunds)."""

    day: int = 0
    month: int = 0


@dataclass(frozen=True)
class TierBonus:
    """The member's tier as the engine sees it: its multiplier of base points (>= 1)."""

    id: int
    name: str
    multiplier: Decimal


@dataclass(frozen=True)
class Item:
    """One reason in the breakdown: `rule`, `promotion` and `tier` None is the base rate."""

    rule: RuleVersion | None
    lines: tuple[int, ...]
    points: int
    promotion: Promotion | None = None
    tier: TierBonus | None = None


@dataclass(frozen=True)
class Result:
    points: int
    items: tuple[Item, ...]
    line_points: tuple[int, ...]
    coalition_points: int = 0  # of points: the coalition promotions' items, after rounding

    @property
    def promotions(self) -> tuple[tuple[Promotion, int], ...]:
        """Each promotion that applied and the whole points its item was worth."""
        return tuple((i.promotion, i.points) for i in self.items if i.promotion is not None)


@dataclass
class _State:
    basket: Basket
    terms: Terms
    history: MemberHistory
    context: PromoContext | None = None
    tier: TierBonus | None = None
    base_exact: list[Decimal] = field(default_factory=list)  # step 1's line points
    tier_item: int | None = None  # index of the tier's item
    line_exact: list[Decimal] = field(default_factory=list)
    items: list[tuple[RuleVersion | None, tuple[int, ...], Decimal]] = field(default_factory=list)
    promotion_of: dict[int, Promotion] = field(default_factory=dict)  # item index -> its promotion
    below_minimum: bool = False

    @property
    def total(self) -> Decimal:
        return sum((exact for _, _, exact in self.items), ZERO)

    def all_lines(self) -> tuple[int, ...]:
        return tuple(range(len(self.basket.lines)))


Step = Callable[[_State], None]


def _line_rule(line: Line, rules: Sequence[RuleVersion]) -> RuleVersion | None:
    """SKU beats category beats the base rate; of two for the same key, the newer rule."""
    best: RuleVersion | None = None
    for rule in rules:
        kind = rule.kind
        if kind is RuleKind.SKU and line.sku is not None and rule.sku == line.sku:
            rank = 2
        elif kind is RuleKind.CATEGORY and line.category is not None and rule.category == line.category:
            rank = 1
        else:
            continue
        best_rank = 0 if best is None else (2 if best.kind is RuleKind.SKU else 1)
        if best is None or (rank, rule.rule_id) > (best_rank, best.rule_id):
            best = rule
    return best


def line_rates(state: _State) -> None:
    """Step 1: every line under its most specific rule; one item per rule (and one for the base)."""
    groups: dict[int | None, tuple[RuleVersion | None, list[int], Decimal]] = {}
    for index, line in enumerate(state.basket.lines):
        rule = _line_rule(line, state.terms.rules)
        base = line.amount * state.terms.earn_rate
        if rule is None:
            exact = base
        elif rule.points_per_unit is not None:
            exact = Decimal(line.quantity) * rule.points_per_unit
        else:
            exact = base * (rule.multiplier or ZERO)
        state.line_exact.append(exact)
        key = rule.rule_id if rule else None
        found = groups.get(key)
        if found is None:
            groups[key] = (rule, [index], exact)
        else:
            found[1].append(index)
            groups[key] = (found[0], found[1], found[2] + exact)
    for rule, lines, exact in groups.values():
        state.items.append((rule, tuple(lines), exact))
    state.base_exact = list(state.line_exact)


def _binding(
    rules: Sequence[RuleVersion], value: Callable[[RuleVersion], Decimal | int | None], *, low: bool
):
    candidates = [(value(r), r) for r in rules if value(r) is not None]
    if not candidates:
        return None
    pick = min if low else max
    return pick(candidates, key=lambda c: (c[0], -c[1].rule_id) if low else (c[0], c[1].rule_id))


def minimum_spend(state: _State) -> None:
    """Step 2: below the highest minimum spend in force, the purchase earns nothing."""
    found = _binding(state.terms.rules, lambda r: r.min_spend, low=False)
    if found is not None and state.basket.amount < found[0]:
        state.below_minimum = True
        if state.total > 0:
            state.items.append((found[1], state.all_lines(), -state.total))


def promotions(state: _State) -> None:
    """Step 3: every applicable stackable promotion, and the best non-stackable one."""
    ctx = state.context
    if ctx is None or not state.terms.promotions or state.below_minimum:
        return
    lines = state.basket.lines
    base = list(state.base_exact)  # the rules' line points: what multipliers multiply
    found: list[tuple[Promotion, tuple[int, ...], dict[int, Decimal], Decimal]] = []
    for promo in state.terms.promotions:
        if not promo.live_at(ctx.at) or not conditions_hold(promo, state.basket.amount, ctx):
            continue
        matching = promo.matching(lines)
        if not matching:
            continue
        extras = line_extras(promo, lines, base, matching)
        exact = Decimal(promo.bonus_points) if promo.bonus_points else sum(extras.values(), ZERO)
        if exact > 0:
            found.append((promo, matching, extras, exact))
    exclusive = [f for f in found if not f[0].stackable]
    chosen = [f for f in found if f[0].stackable]
    if exclusive:
        chosen.append(max(exclusive, key=lambda f: (f[3], f[0].priority, f[0].id)))
    for promo, matching, extras, exact in sorted(chosen, key=lambda f: f[0].id):
        for i, extra in extras.items():
            state.line_exact[i] += extra
        state.promotion_of[len(state.items)] = promo
        state.items.append((None, matching, exact))


def tier_bonus(state: _State) -> None:
    """Step 3b: the tier's multiplier on the base points (nothing below a minimum spend)."""
    tier = state.tier
    if tier is None or tier.multiplier <= 1 or state.below_minimum:
        return
    extra = tier.multiplier - 1
    lines = []
    total = ZERO
    for i, base in enumerate(state.base_exact):
        if base > 0:
            state.line_exact[i] += base * extra
            total += base * extra
            lines.append(i)
    if total > 0:
        state.tier_item = len(state.items)
        state.items.append((None, tuple(lines), total))


def _cap_to(state: _State, rule: RuleVersion, cap: Decimal) -> None:
    if state.total > cap:
        state.items.append((rule, state.all_lines(), cap - state.total))


def purchase_cap(state: _State) -> None:
    """Step 4: at most the lowest cap per purchase in force (promotions' points included)."""
    found = _binding(state.terms.rules, lambda r: r.cap_per_purchase, low=True)
    if found is not None:
        _cap_to(state, found[1], Decimal(found[0]))


def member_caps(state: _State) -> None:
    """Step 5: at most what the member has left under the tightest cap per day or month."""
    rooms = []
    day = _binding(state.terms.rules, lambda r: r.cap_per_member_day, low=True)
    if day is not None:
        rooms.append((max(day[0] - state.history.day, 0), day[1]))
    month = _binding(state.terms.rules, lambda r: r.cap_per_member_month, low=True)
    if month is not None:
        rooms.append((max(month[0] - state.history.month, 0), month[1]))
    if rooms:
        room, rule = min(rooms, key=lambda r: r[0])
        _cap_to(state, rule, Decimal(room))


# The ordered pipeline (see the module's docstring).
PIPELINE: tuple[Step, ...] = (line_rates, minimum_spend, promotions, tier_bonus, purchase_cap, member_caps)


def round_points(exact: Decimal | Fraction, rounding: str) -> int:
    """Whole points of a non-negative exact number: floor, or half up (the partner's choice)."""
    value = Fraction(exact)
    return math.floor(value + Fraction(1, 2)) if rounding == Rounding.HALF_UP else math.floor(value)


def _cumulative(exacts: Sequence[Fraction], rounding: str) -> list[int]:
    """Whole points per part whose sum is the rounded total: each part gets the rounded running
    total after it minus the rounded running total before it (a part worth 0 gets 0)."""
    out, running, before = [], Fraction(0), 0
    for exact in exacts:
        running += exact
        after = round_points(running, rounding)
        out.append(after - before)
        before = after
    return out


def evaluate(
    basket: Basket,
    terms: Terms,
    history: MemberHistory | None = None,
    context: PromoContext | None = None,
    tier: TierBonus | None = None,
) -> Result:
    """`context` None: no promotion applies (a caller without promotions); `tier`: the member's."""
    if not terms.rules and not terms.promotions and len(basket.lines) == 1 and tier is None:
        return _plain(basket, terms)
    return walk(basket, terms, history, context, tier)


def walk(
    basket: Basket,
    terms: Terms,
    history: MemberHistory | None = None,
    context: PromoContext | None = None,
    tier: TierBonus | None = None,
) -> Result:
    """The general pipeline (every step, in order); `evaluate` takes a shortcut past it for a
    one-line purchase under no rule and no live promotion, with the same result."""
    state = _State(basket, terms, history or MemberHistory(), context, tier)
    for step in PIPELINE:
        step(state)
    total = max(state.total, ZERO)
    points = round_points(total, terms.rounding)
    item_points = _cumulative([Fraction(exact) for _, _, exact in state.items], terms.rounding)
    items = tuple(
        Item(rule, lines, pts, state.promotion_of.get(n), tier if n == state.tier_item else None)
        for n, ((rule, lines, _), pts) in enumerate(zip(state.items, item_points, strict=True))
    )
    coalition = sum(i.points for i in items if i.promotion is not None and i.promotion.coalition)
    coalition_points = max(0, min(coalition, points))
    # Each line's share of the final total (after caps), in exact fractions so the shares sum
    # to the total exactly; a refund by line takes back these.
    raw = Fraction(sum(state.line_exact, ZERO))
    scale = Fraction(total) / raw if raw > 0 else Fraction(0)
    line_points = tuple(_cumulative([Fraction(e) * scale for e in state.line_exact], terms.rounding))
    assert sum(item_points) == points == sum(line_points) or raw == 0
    return Result(points, items, line_points, coalition_points)


def _plain(basket: Basket, terms: Terms) -> Result:
    """What the pipeline yields for one line and no rules, without walking it: the base rate's
    one item over line 0, the line getting every point (the common bulk purchase: a third of
    a batch's Python time went to the general walk and its fractions). Same result as the
    pipeline for every amount, rate and rounding (tests/earning/test_engine_plain.py)."""
    exact = basket.lines[0].amount * terms.earn_rate
    points = round_points(exact, terms.rounding) if exact > 0 else 0
    return Result(points, (Item(None, (0,), points),), (points,))
