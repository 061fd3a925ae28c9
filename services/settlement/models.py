"""Settlement runs: per period, what each partner owes or is owed, netted through the coalition."""

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
    Numeric,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base

# The domain's enums are the API's: the GraphQL enums are built from these (StrEnum members are
# the strings stored in the tables, so rows compare and bind as they are).


class RunStatus(StrEnum):
    DRAFT = "DRAFT"
    FINALIZED = "FINALIZED"
    PAID = "PAID"


class LineKind(StrEnum):
    REDEMPTION_RECEIVABLE = "REDEMPTION_RECEIVABLE"
    REDEMPTION_PAYABLE = "REDEMPTION_PAYABLE"
    ISSUE_FEE = "ISSUE_FEE"
    BREAKAGE = "BREAKAGE"
    ADJUSTMENT = "ADJUSTMENT"
    INTERNAL = "INTERNAL"


class PaymentDirection(StrEnum):
    PAY_IN = "PAY_IN"  # the partner pays the clearing house
    PAY_OUT = "PAY_OUT"  # the clearing house pays the partner


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
    # The run settled every ledger event of its period recorded (journal_entries.created_at)
    # before this instant; later ones are late arrivals for the next run. It is the start of the
    # oldest transaction still open when the run read, so nothing recorded before it can appear.
    recorded_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finalized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The highest run id when this run was finalized (runs are numbered under the settlement lock):
    # a run with a greater id was computed after this one was final, so it took this period's late
    # arrivals up to its own recorded_before; a DRAFT with a smaller id is stale.
    finalize_watermark: Mapped[int | None] = mapped_column(BigInteger)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when an admin finalized with reconciliation disputes still open, and how many.
    finalized_over_open_disputes: Mapped[int] = mapped_column(BigInteger, server_default="0")


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
    # ADJUSTMENT lines only: the finalized run whose period the late events belong to, and the
    # kind the line would have had there.
    original_run_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("settlement_runs.id"))
    adjusted_kind: Mapped[str | None] = mapped_column(Text)


class ReconciliationStatus(StrEnum):
    MATCHED = "MATCHED"
    MISSING_IN_LEDGER = "MISSING_IN_LEDGER"
    MISSING_IN_PARTNER_FILE = "MISSING_IN_PARTNER_FILE"
    POINTS_MISMATCH = "POINTS_MISMATCH"


class ReconciliationKind(StrEnum):
    """The ledger entry kinds a partner's own systems record, by order (expiries are the
    coalition's doing, so a partner's file has none)."""

    EARN = "EARN"
    REDEEM = "REDEEM"
    REVERSE = "REVERSE"
    CANCEL_REDEMPTION = "CANCEL_REDEMPTION"


class Reconciliation(Base):
    """A partner's own record of a run's period, as uploaded; one per (run, partner), a new
    upload replaces the old one with its items."""

    __tablename__ = "reconciliations"
    __table_args__ = (UniqueConstraint("run_id", "partner_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("settlement_runs.id", ondelete="CASCADE"))
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    submitted_by: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    rows: Mapped[int] = mapped_column(BigInteger)


class ReconciliationItem(Base):
    """One (order, kind) compared: the ledger's points and the partner's. Anything but MATCHED
    is a dispute, open until an admin resolves it with a note."""

    __tablename__ = "reconciliation_items"
    __table_args__ = (
        Index(
            "ix_reconciliation_items_open",
            "reconciliation_id",
            postgresql_where=text("status <> 'MATCHED' AND resolved_at IS NULL"),
        ),
        UniqueConstraint("reconciliation_id", "order_id", "kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    reconciliation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("reconciliations.id", ondelete="CASCADE")
    )
    order_id: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    ledger_points: Mapped[int | None] = mapped_column(BigInteger)
    partner_points: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
