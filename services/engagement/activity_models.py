"""Activities' tables: what a partner (or the coalition) rewards beyond purchases, and every time
a member was rewarded for one.

An activity belongs to the partner that issues its points (`partner_id`; the coalition's own
activities belong to the coalition's partners row, the issuer of their points). Its code is
unique per owner, case-insensitively, among live activities: an archived code may be reused.

A record is one rewarded activity: the ledger's ACTIVITY entry (`entry_id`) plus what the
activity carried. A SURVEY's answer (`nps_score`, 0-10) and `comment`, and any `data`, are the
member's words: the erasure of the member clears `comment` and `data` in the same transaction
(the trigger `activity_records_forget_erased`, created by the migration: the members' erasure
cannot reach engagement's tables, and a trigger cannot be forgotten by a code path that erases).
The score itself stays, anonymous, so a partner's past NPS does not move when a member leaves.

`birthday_year` is set on the worker's birthday bonuses only: unique per (activity, member,
year), so any number of workers grant a birthday once a year.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class ActivityKind(StrEnum):
    REVIEW = "REVIEW"
    NEWSLETTER_SIGNUP = "NEWSLETTER_SIGNUP"
    SURVEY = "SURVEY"  # carries an NPS answer (0-10) and an optional comment
    BIRTHDAY = "BIRTHDAY"  # granted by the worker on the member's birthday, once a year
    PROFILE_COMPLETED = "PROFILE_COMPLETED"
    CUSTOM = "CUSTOM"


class Activity(Base):
    __tablename__ = "activities"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        Index(
            "uq_activities_live_code",
            "partner_id",
            text("upper(code)"),
            unique=True,
            postgresql_where=text("archived_at IS NULL"),
        ),
        # One live birthday bonus per issuer: two would pay a member twice on one day.
        Index(
            "uq_activities_one_birthday",
            "partner_id",
            unique=True,
            postgresql_where=text("kind = 'BIRTHDAY' AND archived_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))  # the issuer
    code: Mapped[str] = mapped_column(Text)  # upper case, as created
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    points: Mapped[int] = mapped_column(BigInteger)
    per_member_limit: Mapped[int | None] = mapped_column(Integer)  # null: no limit
    cooldown_seconds: Mapped[int | None] = mapped_column(BigInteger)  # null: none
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ActivityRecord(Base):
    __tablename__ = "activity_records"
    __table_args__ = (
        CheckConstraint("nps_score BETWEEN 0 AND 10", name="nps_score_range"),
        # Limits and cooldowns: a member's records of one activity, by when they occurred.
        Index("ix_activity_records_member", "activity_id", "member_id", "occurred_at"),
        # A member's records of every activity: their data export, the erasure trigger's update.
        Index("ix_activity_records_member_id", "member_id"),
        # npsScore(partnerId, from, to): a partner's survey answers by time.
        Index(
            "ix_activity_records_nps",
            "partner_id",
            "occurred_at",
            postgresql_where=text("nps_score IS NOT NULL"),
        ),
        Index(
            "uq_activity_records_birthday",
            "activity_id",
            "member_id",
            "birthday_year",
            unique=True,
            postgresql_where=text("birthday_year IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    activity_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("activities.id"))
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    partner_id: Mapped[int] = mapped_column(BigInteger)  # the activity's issuer, for per-partner reads
    entry_id: Mapped[int] = mapped_column(BigInteger, unique=True)  # the ledger's ACTIVITY entry
    points: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    nps_score: Mapped[int | None] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    birthday_year: Mapped[int | None] = mapped_column(SmallInteger)
