"""The points ledger: double-entry journal, lots, their consumptions, and idempotency keys.

Append-only except for the cached wallet balance, lot remainders and the reversal counters on
purchases; corrections are new entries, never edits.

The five tables every earn writes set-based (journal_entries, postings, lots, lot_consumptions,
purchases) carry no foreign keys (docs/decisions.md, "Bulk earning: no foreign keys on the
append-only ledger"): their reference columns point at rows that are never deleted (partners,
members, accounts) or that the same statement writes (an entry's postings, its lot), and the
checks cost more than half of a bulk batch's write. `coalition audit` checks every one of those
references instead (`audit.REFERENCES`), so a dangling id is a failing audit, a release blocker.
"""

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
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class AccountKind(StrEnum):
    MEMBER_WALLET = "MEMBER_WALLET"
    PARTNER_ISSUANCE = "PARTNER_ISSUANCE"  # goes negative by every point the partner issued
    PARTNER_REDEMPTION = "PARTNER_REDEMPTION"  # receives every point spent at the partner
    PARTNER_BREAKAGE = "PARTNER_BREAKAGE"  # receives the partner's points that expired or were erased


class EntryKind(StrEnum):
    EARN = "EARN"
    REDEEM = "REDEEM"
    REVERSE = "REVERSE"
    CANCEL_REDEMPTION = "CANCEL_REDEMPTION"
    EXPIRE = "EXPIRE"
    ERASURE = "ERASURE"  # an erased member's remaining points, forfeited to their issuers' breakage
    REFERRAL = "REFERRAL"  # a referral bonus: coalition-issued points (services/ledger/coalition_credit.py)
    # Points for an activity (a review, a survey, a birthday): issued by the partner that defined it,
    # or by the coalition for its own activities (services/engagement/activities.py).
    ACTIVITY = "ACTIVITY"
    # Points given to another member (services/ledger/transfers.py): the sender's entry, with both
    # wallets' postings, and the receiver's, related to it, with none.
    TRANSFER_OUT = "TRANSFER_OUT"
    TRANSFER_IN = "TRANSFER_IN"


class EntryStatus(StrEnum):
    """An entry as its member sees it, derived at read time from its lot and corrections."""

    PENDING = "PENDING"  # an earn still in the partner's return window
    AVAILABLE = "AVAILABLE"
    EXPIRED = "EXPIRED"  # an earn whose lot expired
    REVERSED = "REVERSED"  # an earn refunded in full
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"  # a redemption undone


class ConsumptionKind(StrEnum):
    REDEMPTION = "REDEMPTION"  # spent at the counterparty; negative rows are cancellations
    REVERSAL = "REVERSAL"  # taken back from the refunded purchase's own lot
    CLAWBACK = "CLAWBACK"  # taken from another lot to cover a refund at the counterparty
    DEBT_REPAYMENT = "DEBT_REPAYMENT"  # repays what a refund at the counterparty left owing
    EXPIRY = "EXPIRY"
    ERASURE = "ERASURE"  # forfeited at the member's erasure: priced exactly like EXPIRY
    TRANSFER = "TRANSFER"  # given to another member, into a lot of the same issuer: not priced


class Account(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("kind", "partner_id", "member_id", postgresql_nulls_not_distinct=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    partner_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("partners.id"))
    member_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("members.id"))


class Wallet(Base):
    """A member's wallet: the row every operation on the member locks first.

    `balance` caches the sum of the wallet account's postings (remaining points of unexpired lots
    minus debt); `debt` is what refunds took that the member did not have.
    """

    __tablename__ = "wallets"
    __table_args__ = (CheckConstraint("debt >= 0", name="debt_non_negative"),)

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("ledger_accounts.id"))
    balance: Mapped[int] = mapped_column(BigInteger, server_default="0")
    debt: Mapped[int] = mapped_column(BigInteger, server_default="0")


class JournalEntry(Base):
    __tablename__ = "journal_entries"
    __table_args__ = (
        # A member's history newest first, one page at a time (a partner's view of it filters
        # this one member's entries by partner). With (member, partner, id) instead, the whole
        # history's page was planned as a backward scan of every entry of every member.
        Index("ix_journal_entries_member", "member_id", "id"),
        Index("ix_journal_entries_occurred_at", "occurred_at"),
        # Settlement finds late arrivals by when they were recorded; rows are appended in
        # recording order, so a BRIN index is tiny and costs the hot path next to nothing.
        Index("ix_journal_entries_created_at", "created_at", postgresql_using="brin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    member_id: Mapped[int] = mapped_column(BigInteger)
    partner_id: Mapped[int] = mapped_column(BigInteger)
    # The change to the member's points as the member sees it (negative for spends).
    points: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[str | None] = mapped_column(Text)
    related_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    # Of `points`, those issued by (EARN) or given back to (REVERSE, negative) the coalition as
    # issuer; the rest is the entry's partner's. Settlement charges issue fees on the rest only.
    coalition_points: Mapped[int] = mapped_column(BigInteger, server_default="0")
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Posting(Base):
    __tablename__ = "postings"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigInteger, index=True)
    account_id: Mapped[int] = mapped_column(BigInteger, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)


class Lot(Base):
    __tablename__ = "lots"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_in_range"),
        # Redemption walks a member's spendable lots first to expire first.
        Index(
            "ix_lots_member_spendable",
            "member_id",
            "expires_at",
            "id",
            postgresql_where=text("remaining > 0"),
        ),
        # Every lot of a member (their data export), and the lot an entry opened (the status
        # of an activity's or a referral's transaction: the entry has no purchase to lead to it).
        Index("ix_lots_member_entry", "member_id", "earn_entry_id"),
        # The worker's queues: lots still to activate, lots with points still to expire.
        Index("ix_lots_to_activate", "available_at", postgresql_where=text("activated_at IS NULL")),
        Index(
            "ix_lots_to_expire",
            "expires_at",
            postgresql_where=text("expired_at IS NULL AND remaining > 0"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger)
    issuing_partner_id: Mapped[int] = mapped_column(BigInteger)
    earn_entry_id: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    earned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set when the return window had passed and the worker (or the earn itself) recorded it:
    # the durable "points became available" event, exactly once per lot.
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the expiry of what remained was posted to the ledger.
    expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A lot given by another member: the lot its points came from (same issuer, same expiry).
    # Only lots without a source count as issued (the audit).
    source_lot_id: Mapped[int | None] = mapped_column(BigInteger)


class LotConsumption(Base):
    """Points leaving a lot (or, negative, coming back to it): what settlement prices."""

    __tablename__ = "lot_consumptions"
    __table_args__ = (
        CheckConstraint("points <> 0", name="points_non_zero"),
        Index("ix_lot_consumptions_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigInteger, index=True)
    lot_id: Mapped[int] = mapped_column(BigInteger, index=True)
    member_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(Text)
    points: Mapped[int] = mapped_column(BigInteger)
    issuing_partner_id: Mapped[int] = mapped_column(BigInteger)
    # Who the points went to: the redeeming partner, or the refunding one for clawbacks/debts.
    counterparty_partner_id: Mapped[int | None] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MemberDebt(Base):
    """Points a refund took back that the member no longer had; repaid by later credits."""

    __tablename__ = "member_debts"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_in_range"),
        # A member's debts, open (a credit repays them) or not (their data export): a member has
        # few, so one index serves both reads.
        Index("ix_member_debts_member", "member_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    creditor_partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    entry_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("journal_entries.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)


class Purchase(Base):
    """A purchase the ledger booked points for. `earn_detail` is the earning service's document
    (lines, earn breakdown), stored and handed back, never read by the ledger; `lines_refunded`
    is its reversal counter per line (what refunds by line took back so far)."""

    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("partner_id", "order_id"),
        # What a member earned at a partner in a period (caps per member and day or month).
        Index("ix_purchases_member_partner_occurred", "member_id", "partner_id", "occurred_at"),
        CheckConstraint("points_reversed >= 0 AND points_reversed <= points_earned", name="reversal_bounded"),
        CheckConstraint(
            "coalition_points >= 0 AND coalition_points <= points_earned", name="coalition_points_bounded"
        ),
        CheckConstraint("amount_reversed >= 0 AND amount_reversed <= amount", name="refund_bounded"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    partner_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[str] = mapped_column(Text)
    member_id: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    currency: Mapped[str] = mapped_column(Text)
    points_earned: Mapped[int] = mapped_column(BigInteger)
    points_reversed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    amount_reversed: Mapped[Decimal] = mapped_column(Numeric(20, 6), server_default="0")
    entry_id: Mapped[int] = mapped_column(BigInteger)
    lot_id: Mapped[int | None] = mapped_column(BigInteger)
    # Of points_earned, those the coalition issued (a coalition promotion), held in their own lot
    # (same dates) with the coalition as issuer; lot_id is then the partner's share (NULL if none).
    coalition_points: Mapped[int] = mapped_column(BigInteger, server_default="0")
    coalition_lot_id: Mapped[int | None] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    earn_detail: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    lines_refunded: Mapped[dict | None] = mapped_column(JSONB, nullable=True)


class Redemption(Base):
    __tablename__ = "redemptions"
    __table_args__ = (
        UniqueConstraint("partner_id", "order_id"),
        Index(
            "ix_redemptions_reward_member",
            "reward_id",
            "member_id",
            postgresql_where=text("reward_id IS NOT NULL"),
        ),
        # A member's vouchers, whatever the reward: their data export.
        Index("ix_redemptions_member_vouchers", "member_id", postgresql_where=text("reward_id IS NOT NULL")),
        # Settlement prices a redemption's lot movements (and their cancellation) at the price
        # the redemption was made at, finding the redemption by either entry (ledger_movements).
        # An entry belongs to at most one redemption; the indexes being unique says so to the
        # planner, which then drops the joins from a read of the view that needs no price.
        Index("ix_redemptions_entry", "entry_id", unique=True),
        Index("ix_redemptions_cancel_entry", "cancel_entry_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    order_id: Mapped[str] = mapped_column(Text)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    value_amount: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    currency: Mapped[str] = mapped_column(Text)
    redeem_price: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    entry_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("journal_entries.id"))
    # For a reward bought with points: which, how many, and the voucher the member shows.
    reward_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("rewards.id"))
    quantity: Mapped[int | None] = mapped_column(BigInteger)
    voucher_code: Mapped[str | None] = mapped_column(Text, unique=True)
    cancel_entry_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("journal_entries.id"))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(Base):
    """The first answer to a key, per calling client; a retry gets it again and moves nothing."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (PrimaryKeyConstraint("client_id", "key"),)

    client_id: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text)
    operation: Mapped[str] = mapped_column(Text)
    request_hash: Mapped[str] = mapped_column(Text)
    response: Mapped[dict[str, object]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class HoldStatus(StrEnum):
    ACTIVE = "ACTIVE"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    EXPIRED = "EXPIRED"


class Hold(Base):
    """Points reserved at a till (two-phase redemption): they leave `available` from the moment
    of authorisation until captured, voided, or past `expires_at` (whatever the worker has done)."""

    __tablename__ = "holds"
    __table_args__ = (
        UniqueConstraint("partner_id", "order_id"),
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint(
            "captured_points IS NULL OR (captured_points > 0 AND captured_points <= points)",
            name="capture_bounded",
        ),
        Index("ix_holds_member_active", "member_id", postgresql_where=text("status = 'ACTIVE'")),
        Index("ix_holds_member", "member_id", "id"),  # all of a member's holds: their data export
        Index("ix_holds_expiring", "expires_at", postgresql_where=text("status = 'ACTIVE'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    order_id: Mapped[str] = mapped_column(Text)
    points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text, server_default=HoldStatus.ACTIVE)
    captured_points: Mapped[int | None] = mapped_column(BigInteger)
    redemption_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("redemptions.id"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HoldLot(Base):
    """Which lots a hold reserves, first to expire first: a capture spends exactly these."""

    __tablename__ = "hold_lots"
    __table_args__ = (
        PrimaryKeyConstraint("hold_id", "lot_id"),
        CheckConstraint("points > 0", name="points_positive"),
        Index("ix_hold_lots_lot", "lot_id"),
    )

    hold_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("holds.id"))
    lot_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("lots.id"))
    issuing_partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    points: Mapped[int] = mapped_column(BigInteger)


class ExpiryMode(StrEnum):
    PER_LOT = "PER_LOT"  # each lot expires N months after it was earned
    ACTIVITY_EXTENDS = "ACTIVITY_EXTENDS"  # any earn or redeem pushes all lots to now + N months


class ExpiryPolicy(Base):
    """The coalition's expiry policy; one row, changed by admins (audit-logged). Until an admin
    sets one, POINTS_EXPIRY_MONTHS and POINTS_EXPIRY_MODE from the environment apply."""

    __tablename__ = "expiry_policy"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("months BETWEEN 1 AND 240", name="months_range"),
        CheckConstraint("mode IN ('PER_LOT', 'ACTIVITY_EXTENDS')", name="mode_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default="1")
    months: Mapped[int] = mapped_column(BigInteger)
    mode: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[str] = mapped_column(Text)
