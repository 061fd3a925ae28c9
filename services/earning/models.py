"""Earn rules, versioned in time like partners' contracts.

A rule (`earn_rules`) is the stable thing a partner names and archives; what it says lives in its
versions (`earn_rule_versions`), each in force from its `effective_from` until the next one. A
change is a new version from a time that is not in the past, so a purchase is always earned (and
refunded) under the rules that were in force at its `occurredAt`, and the past is never rewritten.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Numeric,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class Channel(StrEnum):
    """Where a purchase was made (promotions will condition on it)."""

    STORE = "STORE"
    ONLINE = "ONLINE"
    APP = "APP"


class RuleKind(StrEnum):
    """What a rule is about, from which fields it sets."""

    SKU = "SKU"  # lines of one SKU: a rate (pointsPerUnit) or a multiplier of the base rate
    CATEGORY = "CATEGORY"  # lines of one category: the same
    PURCHASE = "PURCHASE"  # the whole purchase: minimum spend, caps per purchase and per member


class EarnRule(Base):
    __tablename__ = "earn_rules"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EarnRuleVersion(Base):
    """What a rule says from `effective_from` on; `archived` versions say it no longer applies."""

    __tablename__ = "earn_rule_versions"
    __table_args__ = (
        UniqueConstraint("rule_id", "effective_from"),
        Index("ix_earn_rule_versions_partner", "partner_id"),
        CheckConstraint("multiplier IS NULL OR multiplier >= 0", name="multiplier_non_negative"),
        CheckConstraint("points_per_unit IS NULL OR points_per_unit >= 0", name="rate_non_negative"),
        CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name="window_ordered"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    rule_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("earn_rules.id"))
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    name: Mapped[str] = mapped_column(Text)
    sku: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(Text)
    multiplier: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    points_per_unit: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    min_spend: Mapped[Decimal | None] = mapped_column(Numeric(20, 6))  # in the partner's currency
    cap_per_purchase: Mapped[int | None] = mapped_column(BigInteger)
    cap_per_member_day: Mapped[int | None] = mapped_column(BigInteger)
    cap_per_member_month: Mapped[int | None] = mapped_column(BigInteger)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archived: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
