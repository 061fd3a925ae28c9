"""Partner brands and their contracts (prices), versioned in time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class Partner(Base):
    __tablename__ = "partners"
    __table_args__ = (
        CheckConstraint("earn_rate >= 0", name="earn_rate_non_negative"),
        CheckConstraint("return_window_days >= 0", name="return_window_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    # The currency its purchases are in; its earn rate is points per unit of it.
    currency: Mapped[str] = mapped_column(Text)
    earn_rate: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    earn_rounding: Mapped[str] = mapped_column(Text, server_default="FLOOR")
    return_window_days: Mapped[int] = mapped_column(Integer, server_default="0")
    # IANA name: where its days and months begin (caps per member and day, promotions' hours).
    time_zone: Mapped[str] = mapped_column(Text, server_default="UTC")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PartnerContract(Base):
    """Prices from `effective_from` on; a new version never reprices what came before it."""

    __tablename__ = "partner_contracts"
    __table_args__ = (
        UniqueConstraint("partner_id", "effective_from"),
        CheckConstraint("issue_price >= 0 AND redeem_price >= 0", name="prices_non_negative"),
        CheckConstraint("breakage_share >= 0 AND breakage_share <= 1", name="breakage_share_range"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    currency: Mapped[str] = mapped_column(Text)  # the coalition's settlement currency
    issue_price: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    redeem_price: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    issue_fee_per_point: Mapped[Decimal] = mapped_column(Numeric(18, 6), server_default="0")
    breakage_share: Mapped[Decimal] = mapped_column(Numeric(7, 6), server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Reward(Base):
    """Something a partner sells for points. `stock` null is unlimited; it never goes below zero."""

    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint("points_cost > 0", name="cost_positive"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_non_negative"),
        CheckConstraint("max_per_member IS NULL OR max_per_member > 0", name="limit_positive"),
        CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name="window_ordered"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default="")
    points_cost: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    max_per_member: Mapped[int | None] = mapped_column(Integer, nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
