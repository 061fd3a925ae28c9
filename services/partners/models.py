"""Partner brands and their contracts (prices), versioned in time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class PartnerKind(StrEnum):
    """What a partners row stands for. PARTNER: a brand that earns and redeems. COALITION: the
    coalition itself as the issuer of the points it funds (coalition promotions, referral
    bonuses): exactly one row, created on demand, with ledger accounts but no contract, no
    credentials and no members; it never earns or redeems at a till."""

    PARTNER = "PARTNER"
    COALITION = "COALITION"
    # A charity: members donate points to it (donatePoints, a redemption at its redeem price); it
    # never earns. Created by admins like a partner (createPartner kind: CHARITY).
    CHARITY = "CHARITY"


class Partner(Base):
    __tablename__ = "partners"
    __table_args__ = (
        CheckConstraint("earn_rate >= 0", name="earn_rate_non_negative"),
        CheckConstraint("return_window_days >= 0", name="return_window_non_negative"),
        # One coalition row at most: the issuer every coalition-funded point names.
        Index("uq_partners_one_coalition", "kind", unique=True, postgresql_where=text("kind = 'COALITION'")),
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
    kind: Mapped[str] = mapped_column(Text, server_default=PartnerKind.PARTNER.value)
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
