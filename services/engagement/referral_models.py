"""Referrals' tables: members' referral codes, who referred whom, and the bonuses paid.

Engagement owns them (members' own columns belong to services/members, which cannot import
engagement; a code is engagement's concept, so it gets a table of its own keyed by member).
Uniqueness carries the rules the code relies on under concurrency: one code per member and one
member per code; one referral per referred member; one bonus per referral and per referred
member, whatever number of workers run the job.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class ReferralCode(Base):
    __tablename__ = "referral_codes"

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)  # 8 Crockford base32 characters, upper case
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Referral(Base):
    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_referrer", "referrer_member_id"),
        # The job's queue: unpaid referrals, least recently checked first.
        Index(
            "ix_referrals_unpaid",
            text("checked_at NULLS FIRST"),
            "id",
            postgresql_where=text("closed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    referrer_member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    referred_member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), unique=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))  # enrolled at
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # by the job, last
    # Paid (a referral_bonuses row), or never payable (the referrer was erased): off the queue.
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReferralBonus(Base):
    __tablename__ = "referral_bonuses"

    referral_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("referrals.id"), primary_key=True)
    referred_member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), unique=True)
    referrer_member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[int] = mapped_column(BigInteger, unique=True)  # the ledger's REFERRAL entry
    qualifying_entry_id: Mapped[int] = mapped_column(BigInteger)  # the purchase's EARN entry
    rewarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
