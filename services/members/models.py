"""Coalition members and their enrolments at partners."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
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
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class LinkHow(enum.StrEnum):
    """How a member came to be linked to a partner (`Me.links`, member.linked events)."""

    ENROLLED = "ENROLLED"  # the partner enrolled them with its own customer ref
    CARD_PRESENTED = "CARD_PRESENTED"  # they earned there by presenting their card


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        # Sign-in by email and "is this email someone else's" (credentials, contacts), which
        # compare case-insensitively: without it each scanned every member.
        Index("ix_members_email_lower", text("lower(email)"), postgresql_where=text("erased_at IS NULL")),
        # The birthday bonus finds a day's birthdays (services/engagement/birthdays.py).
        Index(
            "ix_members_birthday",
            text("(EXTRACT(MONTH FROM birth_date) * 100 + EXTRACT(DAY FROM birth_date))"),
            postgresql_where=text("birth_date IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    member_number: Mapped[str] = mapped_column(Text, unique=True)
    email: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # argon2id (services/members/credentials.py); null until the member activates their account.
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The member's spending consent: when set, a spend needs a one-time code from the member app.
    require_code_to_spend: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # The member's language for mail (a BCP 47 tag such as "fr" or "nl-BE"); null: not known,
    # mail goes in English. Mail is sent in the best language we have templates for.
    language: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Opt-outs of member mail, per kind (services/members/mail_preferences.py): opted in by default.
    mail_tier_changes: Mapped[bool] = mapped_column(Boolean, server_default="true")
    mail_expiring_points: Mapped[bool] = mapped_column(Boolean, server_default="true")
    mail_reward_vouchers: Mapped[bool] = mapped_column(Boolean, server_default="true")
    mail_transfers_received: Mapped[bool] = mapped_column(Boolean, server_default="true")
    # Optional (enrollMember, updateMemberSettings): the day of the birthday bonus (BIRTHDAY activities).
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # Erased members keep their row (the number is the ledger's opaque key) and nothing personal.
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Enrollment(Base):
    """A member known to a partner. Tenancy hangs on this row: no row, no visibility."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("partner_id", "member_id"),
        UniqueConstraint("partner_id", "partner_customer_ref"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    # Null when the member was linked by presenting the card at the till rather than enrolled.
    partner_customer_ref: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ActivationCode(Base):
    """The one pending activation (or reset) code of a member: a new request replaces it, five
    wrong tries or a successful confirmation delete it. Only a hash is stored; see accounts.py."""

    __tablename__ = "activation_codes"

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    code_hash: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    failed_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SpendCode(Base):
    """A one-time code the member shows at the till to consent to one spend of their points.

    Only a hash is kept (sha256 of the member id and the code: a code is bound to its member and
    lives two minutes, so a slow hash buys nothing); `used_at` marks the spend that consumed it."""

    __tablename__ = "spend_codes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    code_hash: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Tier(Base):
    """A coalition-wide status tier (services/engagement defines them). Tiers are ordered by
    `qualifying_points`, unique, so "higher" is never ambiguous; a tier at 0 is the base tier."""

    __tablename__ = "tiers"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    qualifying_points: Mapped[int] = mapped_column(BigInteger, unique=True)
    multiplier: Mapped[Decimal] = mapped_column(Numeric(10, 4))
    benefits: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MemberTier(Base):
    """A member's tier: held since `since`, kept at least until `qualifies_until` (the anniversary);
    `tier_points` is the tier's qualifying points when it was reached (the rank an upgrade compares
    against, so concurrent earns upgrade once). No row: no tier yet."""

    __tablename__ = "member_tiers"

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    tier_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tiers.id"))
    tier_points: Mapped[int] = mapped_column(BigInteger)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    qualifies_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
