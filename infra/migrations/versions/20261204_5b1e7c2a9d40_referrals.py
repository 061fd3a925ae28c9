"""referrals: members' referral codes, referrals and their bonuses

Revision ID: 5b1e7c2a9d40
Revises: ef8e4fe3054d
Create Date: 2026-12-04 13:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b1e7c2a9d40"
down_revision: str | None = "ef8e4fe3054d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "referral_codes",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_referral_codes_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_referral_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_referral_codes_code")),
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("referrer_member_id", sa.BigInteger(), nullable=False),
        sa.Column("referred_member_id", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["referrer_member_id"], ["members.id"], name=op.f("fk_referrals_referrer_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["referred_member_id"], ["members.id"], name=op.f("fk_referrals_referred_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_referrals_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint("referred_member_id", name=op.f("uq_referrals_referred_member_id")),
    )
    op.create_index("ix_referrals_referrer", "referrals", ["referrer_member_id"], unique=False)
    op.create_index(
        "ix_referrals_unpaid",
        "referrals",
        [sa.text("checked_at NULLS FIRST"), "id"],
        unique=False,
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_table(
        "referral_bonuses",
        sa.Column("referral_id", sa.BigInteger(), nullable=False),
        sa.Column("referred_member_id", sa.BigInteger(), nullable=False),
        sa.Column("referrer_member_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("qualifying_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("rewarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_referral_bonuses_referral_id_referrals")
        ),
        sa.ForeignKeyConstraint(
            ["referred_member_id"],
            ["members.id"],
            name=op.f("fk_referral_bonuses_referred_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["referrer_member_id"],
            ["members.id"],
            name=op.f("fk_referral_bonuses_referrer_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("referral_id", name=op.f("pk_referral_bonuses")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_referral_bonuses_entry_id")),
        sa.UniqueConstraint("referred_member_id", name=op.f("uq_referral_bonuses_referred_member_id")),
    )
    op.create_index(
        op.f("ix_referral_bonuses_referrer_member_id"),
        "referral_bonuses",
        ["referrer_member_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_referral_bonuses_referrer_member_id"), table_name="referral_bonuses")
    op.drop_table("referral_bonuses")
    op.drop_index("ix_referrals_unpaid", table_name="referrals")
    op.drop_index("ix_referrals_referrer", table_name="referrals")
    op.drop_table("referrals")
    op.drop_table("referral_codes")
