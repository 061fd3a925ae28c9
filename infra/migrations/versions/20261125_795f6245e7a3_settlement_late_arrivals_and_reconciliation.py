"""settlement late arrivals and reconciliation

Revision ID: 795f6245e7a3
Revises: a62065a371dd
Create Date: 2026-11-25 16:13:14.186270
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "795f6245e7a3"
down_revision: str | None = "a62065a371dd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciliations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("submitted_by", sa.Text(), nullable=False),
        sa.Column(
            "submitted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_reconciliations_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["settlement_runs.id"],
            name=op.f("fk_reconciliations_run_id_settlement_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliations")),
        sa.UniqueConstraint("run_id", "partner_id", name=op.f("uq_reconciliations_run_id_partner_id")),
    )
    op.create_table(
        "reconciliation_items",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("reconciliation_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("ledger_points", sa.BigInteger(), nullable=True),
        sa.Column("partner_points", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["reconciliation_id"],
            ["reconciliations.id"],
            name=op.f("fk_reconciliation_items_reconciliation_id_reconciliations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_items")),
        sa.UniqueConstraint(
            "reconciliation_id",
            "order_id",
            "kind",
            name=op.f("uq_reconciliation_items_reconciliation_id_order_id_kind"),
        ),
    )
    op.create_index(
        "ix_reconciliation_items_open",
        "reconciliation_items",
        ["reconciliation_id"],
        unique=False,
        postgresql_where=sa.text("status <> 'MATCHED' AND resolved_at IS NULL"),
    )
    op.create_index(
        "ix_journal_entries_created_at",
        "journal_entries",
        ["created_at"],
        unique=False,
        postgresql_using="brin",
    )
    op.add_column("settlement_lines", sa.Column("original_run_id", sa.BigInteger(), nullable=True))
    op.add_column("settlement_lines", sa.Column("adjusted_kind", sa.Text(), nullable=True))
    op.create_foreign_key(
        op.f("fk_settlement_lines_original_run_id_settlement_runs"),
        "settlement_lines",
        "settlement_runs",
        ["original_run_id"],
        ["id"],
    )
    op.add_column("settlement_runs", sa.Column("recorded_before", sa.DateTime(timezone=True), nullable=True))
    op.add_column("settlement_runs", sa.Column("finalize_watermark", sa.BigInteger(), nullable=True))
    # Runs made before late arrivals were tracked read everything committed when they ran; a final
    # one's late-arrival window opens there, and every later run counts as computed after it.
    op.execute(
        "UPDATE settlement_runs SET recorded_before = created_at,"
        " finalize_watermark = CASE WHEN status <> 'DRAFT' THEN id END"
    )
    op.alter_column("settlement_runs", "recorded_before", nullable=False)
    op.add_column(
        "settlement_runs",
        sa.Column("finalized_over_open_disputes", sa.BigInteger(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("settlement_runs", "finalized_over_open_disputes")
    op.drop_column("settlement_runs", "finalize_watermark")
    op.drop_column("settlement_runs", "recorded_before")
    op.drop_constraint(
        op.f("fk_settlement_lines_original_run_id_settlement_runs"), "settlement_lines", type_="foreignkey"
    )
    op.drop_column("settlement_lines", "adjusted_kind")
    op.drop_column("settlement_lines", "original_run_id")
    op.drop_index("ix_journal_entries_created_at", table_name="journal_entries", postgresql_using="brin")
    op.drop_index(
        "ix_reconciliation_items_open",
        table_name="reconciliation_items",
        postgresql_where=sa.text("status <> 'MATCHED' AND resolved_at IS NULL"),
    )
    op.drop_table("reconciliation_items")
    op.drop_table("reconciliations")
