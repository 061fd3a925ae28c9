"""Settlement runs: per period, what each partner owes or is owed, netted through the coalition."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Numeric,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class RunStatus:
    DRAFT = "DRAFT"
    FINALIZED = "FINALIZED"
    PAID = "PAID"


class LineKind:
    REDEMPTION_RECEIVABLE = "REDEMPTION_RECEIVABLE"
    REDEMPTION_PAYABLE = "REDEMPTION_PAYABLE"
    ISSUE_FEE = "ISSUE_FEE"
    BREAKAGE = "BREAKAGE"
    ADJUSTMENT = "ADJUSTMENT"
    INTERNAL = "INTERNAL"


class SettlementRun(Base):
    __tablename__ = "settlement_runs"
    __table_args__ = (
        CheckConstraint("period_end > period_start", name="period_ordered"),
        Index("ix_settlement_runs_period", "period_start", "period_end"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finalized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SettlementLine(Base):
    """One line of one statement. `partner_id` null is the coalition's own statement;
    `counterparty_partner_id` null is the coalition as counterparty."""

    __tablename__ = "settlement_lines"
    __table_args__ = (Index("ix_settlement_lines_run_partner", "run_id", "partner_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("settlement_runs.id", ondelete="CASCADE"))
    partner_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("partners.id"))
    counterparty_partner_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("partners.id"))
    kind: Mapped[str] = mapped_column(Text)
    points: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    currency: Mapped[str] = mapped_column(Text)
