"""Member notifications: one row per mail decided, whether it was sent or found not to be wanted.

A row is written in the same transaction that decides it (`dispatch.py` for outbox events,
`expiring.py` for the expiring-points scan) and is the only record of whether a mail was owed:
- `event_id` is unique: an outbox event yields at most one notification, however many workers
  read it, however often (exactly-once recording);
- (`member_id`, `expires_on`) is unique: the expiring-points notice goes once per member and
  expiry date (a "lot batch"), however many scans see it (event rows have no `expires_on`, and
  NULLs never clash).

Sending (`delivery.py`) happens after the deciding transaction committed, from these rows, with
retries: status PENDING until SENT, or FAILED once the retries are spent; SKIPPED rows were never
to be sent (`skip_reason`: opted out, no email, erased).
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class NotificationKind(enum.StrEnum):
    TIER_UP = "TIER_UP"
    REWARD_VOUCHER = "REWARD_VOUCHER"
    TRANSFER_RECEIVED = "TRANSFER_RECEIVED"
    POINTS_EXPIRING = "POINTS_EXPIRING"


class NotificationStatus(enum.StrEnum):
    PENDING = "PENDING"  # to send (again, after `next_attempt_at`)
    SENT = "SENT"
    FAILED = "FAILED"  # the SMTP server refused it every time we tried
    SKIPPED = "SKIPPED"  # never to be sent: see skip_reason


class SkipReason(enum.StrEnum):
    OPTED_OUT = "OPTED_OUT"
    NO_EMAIL = "NO_EMAIL"
    ERASED = "ERASED"  # erased before the mail went out


class MemberNotification(Base):
    __tablename__ = "member_notifications"
    __table_args__ = (
        UniqueConstraint("member_id", "expires_on"),
        Index("ix_member_notifications_due", "next_attempt_at", postgresql_where=text("status = 'PENDING'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(Text)
    # The outbox event it answers (null for the expiring-points notice, which no event causes).
    event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), unique=True)
    # The expiry date (UTC) of the lots an expiring-points notice is about.
    expires_on: Mapped[date | None] = mapped_column(Date)
    # What the mail says (the event's payload, or the expiring points): rendered when sent, in the
    # member's language as it is then, to the member's email as it is then.
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(Text)
    skip_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NotificationScan(Base):
    """When a periodic scan last ran (the expiring-points scan): the worker runs every few seconds,
    the scan at most once per its interval, whichever worker claims it first."""

    __tablename__ = "notification_scans"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
