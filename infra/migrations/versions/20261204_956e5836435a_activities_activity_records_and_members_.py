"""activities, activity records and members' birth dates

Revision ID: 956e5836435a
Revises: 5b1e7c2a9d40
Create Date: 2026-12-04 18:05:46.889483
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "956e5836435a"
down_revision: str | None = "5b1e7c2a9d40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FORGET_FUNCTION = """
CREATE FUNCTION activity_records_forget_erased() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE activity_records SET comment = NULL, data = NULL
  WHERE member_id = NEW.id AND (comment IS NOT NULL OR data IS NOT NULL);
  RETURN NULL;
END $$
"""
FORGET_TRIGGER = """
CREATE TRIGGER activity_records_forget_erased AFTER UPDATE OF erased_at ON members
FOR EACH ROW WHEN (OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL)
EXECUTE FUNCTION activity_records_forget_erased()
"""


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("per_member_limit", sa.Integer(), nullable=True),
        sa.Column("cooldown_seconds", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("points > 0", name=op.f("ck_activities_points_positive")),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_activities_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    op.create_index(
        "uq_activities_live_code",
        "activities",
        ["partner_id", sa.literal_column("upper(code)")],
        unique=True,
        postgresql_where=sa.text("archived_at IS NULL"),
    )
    op.create_index(
        "uq_activities_one_birthday",
        "activities",
        ["partner_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'BIRTHDAY' AND archived_at IS NULL"),
    )
    op.create_table(
        "activity_records",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("activity_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("nps_score", sa.SmallInteger(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("birthday_year", sa.SmallInteger(), nullable=True),
        sa.CheckConstraint("nps_score BETWEEN 0 AND 10", name=op.f("ck_activity_records_nps_score_range")),
        sa.ForeignKeyConstraint(
            ["activity_id"], ["activities.id"], name=op.f("fk_activity_records_activity_id_activities")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_activity_records_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_records")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_activity_records_entry_id")),
    )
    op.create_index(
        "ix_activity_records_member",
        "activity_records",
        ["activity_id", "member_id", "occurred_at"],
        unique=False,
    )
    op.create_index(
        "ix_activity_records_nps",
        "activity_records",
        ["partner_id", "occurred_at"],
        unique=False,
        postgresql_where=sa.text("nps_score IS NOT NULL"),
    )
    op.create_index(
        "uq_activity_records_birthday",
        "activity_records",
        ["activity_id", "member_id", "birthday_year"],
        unique=True,
        postgresql_where=sa.text("birthday_year IS NOT NULL"),
    )
    op.add_column("members", sa.Column("birth_date", sa.Date(), nullable=True))
    op.create_index(
        "ix_members_birthday",
        "members",
        [sa.literal_column("(EXTRACT(MONTH FROM birth_date) * 100 + EXTRACT(DAY FROM birth_date))")],
        unique=False,
        postgresql_where=sa.text("birth_date IS NOT NULL"),
    )
    # A member's erasure clears their words (survey comments, activity data) in its transaction:
    # services/members cannot reach engagement's tables (services/engagement/activity_models.py).
    op.execute(FORGET_FUNCTION)
    op.execute(FORGET_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER activity_records_forget_erased ON members")
    op.execute("DROP FUNCTION activity_records_forget_erased()")
    op.drop_index(
        "ix_members_birthday", table_name="members", postgresql_where=sa.text("birth_date IS NOT NULL")
    )
    op.drop_column("members", "birth_date")
    op.drop_index(
        "uq_activity_records_birthday",
        table_name="activity_records",
        postgresql_where=sa.text("birthday_year IS NOT NULL"),
    )
    op.drop_index(
        "ix_activity_records_nps",
        table_name="activity_records",
        postgresql_where=sa.text("nps_score IS NOT NULL"),
    )
    op.drop_index("ix_activity_records_member", table_name="activity_records")
    op.drop_table("activity_records")
    op.drop_index(
        "uq_activities_one_birthday",
        table_name="activities",
        postgresql_where=sa.text("kind = 'BIRTHDAY' AND archived_at IS NULL"),
    )
    op.drop_index(
        "uq_activities_live_code", table_name="activities", postgresql_where=sa.text("archived_at IS NULL")
    )
    op.drop_table("activities")
