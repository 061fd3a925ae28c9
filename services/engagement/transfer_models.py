"""Transfers' table: every gift of points between members, with the ledger's two entries.

The ledger keeps the books (services/ledger/transfers.py: lots moved with their issuer and
expiry); this row is engagement's: who gave whom how much and with what message, and what the
daily and monthly limits count (a sender's transfers by time, indexed).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class Transfer(Base):
    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        Index("ix_transfers_sender", "sender_member_id", "created_at"),
        Index("ix_transfers_receiver", "receiver_member_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    sender_member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    receiver_member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    message: Mapped[str | None] = mapped_column(Text)
    out_entry_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    in_entry_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
