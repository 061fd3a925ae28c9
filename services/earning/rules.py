"""Earn rules as the engine reads them: versions in time, and which are in force at an instant.

A rule's version is in force at `t` when it is the rule's latest version with effective_from <= t,
is not archived, and its own window holds (valid_from <= t < valid_until). A rule is never in
force before it was created (its first version starts then), so creating or changing one never
changes what past purchases earned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.earning.models import RuleKind

MAX_NAME = 200
MAX_KEY = 200  # a SKU or category
MAX_MULTIPLIER = Decimal(1000)
MAX_RATE = Decimal(1_000_000)
MAX_CAP = 10**12
MAX_RULES_PER_PARTNER = 500

# The fields a version carries, in the order the table and the GraphQL input name them.
TERMS = (
    "name",
    "sku",
    "category",
    "multiplier",
    "points_per_unit",
    "min_spend",
    "cap_per_purchase",
    "cap_per_member_day",
    "cap_per_member_month",
    "valid_from",
    "valid_until",
)
LINE_TERMS = ("multiplier", "points_per_unit")
PURCHASE_TERMS = ("min_spend", "cap_per_purchase", "cap_per_member_day", "cap_per_member_month")


@dataclass(frozen=True)
class RuleVersion:
    rule_id: int
    version_id: int
    partner_id: int
    effective_from: datetime
    name: str
    sku: str | None
    category: str | None
    multiplier: Decimal | None
    points_per_unit: Decimal | None
    min_spend: Decimal | None
    cap_per_purchase: int | None
    cap_per_member_day: int | None
    cap_per_member_month: int | None
    valid_from: datetime
    valid_until: datetime | None
    archived: bool

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> RuleVersion:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    @property
    def kind(self) -> RuleKind:
        if self.sku is not None:
            return RuleKind.SKU
        if self.category is not None:
            return RuleKind.CATEGORY
        return RuleKind.PURCHASE

    def terms(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in TERMS}

    def applies_at(self, at: datetime) -> bool:
        return (
            not self.archived
            and self.valid_from <= at
            and (self.valid_until is None or at < self.valid_until)
        )


@dataclass(frozen=True)
class PartnerRules:
    """Every version of every rule of one partner, as the cache keeps them."""

    partner_id: int
    versions: Mapping[int, tuple[RuleVersion, ...]]  # by rule id, oldest version first

    @classmethod
    def of(cls, partner_id: int, versions: Iterable[RuleVersion]) -> PartnerRules:
        by_rule: dict[int, list[RuleVersion]] = {}
        for version in sorted(versions, key=lambda v: (v.rule_id, v.effective_from)):
            by_rule.setdefault(version.rule_id, []).append(version)
        return cls(partner_id, {rule: tuple(vs) for rule, vs in by_rule.items()})

    @property
    def empty(self) -> bool:
        return not self.versions

    def version_at(self, rule_id: int, at: datetime) -> RuleVersion | None:
        """The rule's version in effect at `at` (archived or outside its window included)."""
        current = None
        for version in self.versions.get(rule_id, ()):
            if version.effective_from <= at:
                current = version
        return current

    def in_force(self, at: datetime) -> tuple[RuleVersion, ...]:
        if not self.versions:
            return ()
        found = (self.version_at(rule_id, at) for rule_id in self.versions)
        return tuple(v for v in found if v is not None and v.applies_at(at))

    def latest(self) -> list[RuleVersion]:
        """Each rule's newest version (what earnRules lists), by rule id."""
        return [versions[-1] for _, versions in sorted(self.versions.items())]
