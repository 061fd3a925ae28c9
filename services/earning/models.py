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
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class Channel(StrEnum):
    """Where a purchase was made (a promotion may condition on it)."""

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


class Promotion(Base):
    """A limited-time or recurring boost to what purchases earn, with a budget in points.

    `partner_id` NULL is a coalition promotion: it applies at every partner and its points are
    issued by the coalition (settled as such), not by the partner whose purchase it is. A
    promotion is live at an instant when that instant is inside [starts_at, ends_at) and, with a
    `recurrence` (an iCalendar RRULE evaluated in the partner's time zone; UTC for a coalition
    promotion), inside one of its occurrences [start, start + recurrence_seconds). Exactly one
    effect is set. `spent_points` never passes `budget_points`: the earn that would cross it is
    serialised on this row (see services/earning/promotions).
    """

    __tablename__ = "promotions"
    __table_args__ = (
        Index("ix_promotions_partner", "partner_id"),
        CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="window_ordered"),
        CheckConstraint(
            "(recurrence IS NULL) = (recurrence_seconds IS NULL)", name="recurrence_has_duration"
        ),
        CheckConstraint("recurrence_seconds IS NULL OR recurrence_seconds > 0", name="duration_positive"),
        CheckConstraint("num_nonnulls(multiplier, bonus_points, percent_of_amount) = 1", name="one_effect"),
        CheckConstraint("multiplier IS NULL OR multiplier >= 0", name="multiplier_non_negative"),
        CheckConstraint("bonus_points IS NULL OR bonus_points > 0", name="bonus_positive"),
        CheckConstraint("percent_of_amount IS NULL OR percent_of_amount > 0", name="percent_positive"),
        CheckConstraint("budget_points IS NULL OR budget_points > 0", name="budget_positive"),
        CheckConstraint(
            "spent_points >= 0 AND (budget_points IS NULL OR spent_points <= budget_points)",
            name="budget_respected",
        ),
        CheckConstraint("per_member_limit IS NULL OR per_member_limit > 0", name="limit_positive"),
        CheckConstraint("inactive_days IS NULL OR inactive_days > 0", name="inactive_days_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    partner_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("partners.id"))
    name: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recurrence: Mapped[str | None] = mapped_column(Text)  # RRULE text, e.g. FREQ=WEEKLY;BYDAY=TU;BYHOUR=14
    recurrence_seconds: Mapped[int | None] = mapped_column(BigInteger)  # each occurrence's length
    # Conditions (all that are set must hold).
    min_spend: Mapped[Decimal | None] = mapped_column(Numeric(20, 6))
    min_spend_currency: Mapped[str | None] = mapped_column(Text)
    categories: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    skus: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    channels: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    first_purchase: Mapped[bool] = mapped_column(Boolean, server_default="false")
    inactive_days: Mapped[int | None] = mapped_column(BigInteger)
    requires_code: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # Effect (exactly one).
    multiplier: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))  # on the base points
    bonus_points: Mapped[int | None] = mapped_column(BigInteger)
    percent_of_amount: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))  # 5 = 5 % of the amount
    budget_points: Mapped[int | None] = mapped_column(BigInteger)
    spent_points: Mapped[int] = mapped_column(BigInteger, server_default="0")
    per_member_limit: Mapped[int | None] = mapped_column(BigInteger)  # purchases rewarded per member
    stackable: Mapped[bool] = mapped_column(Boolean, server_default="false")
    priority: Mapped[int] = mapped_column(BigInteger, server_default="0")
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PromoCodeBatch(Base):
    """Codes generated together for one promotion, with the terms every code of it shares.

    `partner_id` is the promotion's (NULL for a coalition promotion, whose codes work at every
    partner), copied so that a claim checks the code's owner without reading the promotion.
    `uses_per_member` counts a member's uses of ANY code of the batch (a batch is one campaign:
    a member holding two single-use codes of it still gets the campaign once when it is 1).
    """

    __tablename__ = "promo_code_batches"
    __table_args__ = (
        Index("ix_promo_code_batches_promotion", "promotion_id"),
        CheckConstraint("count > 0", name="count_positive"),
        CheckConstraint("uses_per_code > 0", name="uses_per_code_positive"),
        CheckConstraint("uses_per_member IS NULL OR uses_per_member > 0", name="uses_per_member_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    promotion_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("promotions.id"))
    partner_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("partners.id"))
    prefix: Mapped[str] = mapped_column(Text, server_default="")
    count: Mapped[int] = mapped_column(BigInteger)
    uses_per_code: Mapped[int] = mapped_column(BigInteger)
    uses_per_member: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(Text)  # the client id that generated it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PromoCode(Base):
    """One code, stored normalised (upper case, no hyphens or spaces) as partners print it: not
    hashed, since the partner must be able to export and print it again. `uses` only moves by a
    guarded UPDATE (never past the batch's uses_per_code) and back by a release."""

    __tablename__ = "promo_codes"
    __table_args__ = (CheckConstraint("uses >= 0", name="uses_non_negative"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    batch_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("promo_code_batches.id"), index=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    uses: Mapped[int] = mapped_column(BigInteger, server_default="0")


class PromoCodeUse(Base):
    """A code used on a purchase (by its order id at the partner, unique per partner), for counting
    a member's uses and for giving the use back when the purchase is fully refunded
    (`released_at`)."""

    __tablename__ = "promo_code_uses"
    __table_args__ = (
        Index("ix_promo_code_uses_order", "partner_id", "order_id"),
        Index(
            "ix_promo_code_uses_member",
            "batch_id",
            "member_id",
            postgresql_where="released_at IS NULL",
        ),
        Index("ix_promo_code_uses_member_id", "member_id"),  # a member's data export
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("promo_codes.id"))
    batch_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("promo_code_batches.id"))
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    order_id: Mapped[str] = mapped_column(Text)
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PromotionAward(Base):
    """One purchase a promotion rewarded: what `per_member_limit` counts (awards not refunded) and
    what a full refund gives back to the budget (`points`, then `refunded_at` is set, once)."""

    __tablename__ = "promotion_awards"
    __table_args__ = (
        UniqueConstraint("partner_id", "order_id", "promotion_id"),
        Index("ix_promotion_awards_member", "promotion_id", "member_id"),
        CheckConstraint("points >= 0", name="points_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    promotion_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("promotions.id"))
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    order_id: Mapped[str] = mapped_column(Text)
    points: Mapped[int] = mapped_column(BigInteger)  # reserved from the budget
    refunded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
