"""transfers and lots' source lot

Revision ID: 6e57759e110c
Revises: 956e5836435a
Create Date: 2026-12-04 19:10:44.274343
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6e57759e110c"
down_revision: str | None = "956e5836435a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transfers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("sender_member_id", sa.BigInteger(), nullable=False),
        sa.Column("receiver_member_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("out_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("in_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_transfers_points_positive")),
        sa.ForeignKeyConstraint(
            ["receiver_member_id"], ["members.id"], name=op.f("fk_transfers_receiver_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["sender_member_id"], ["members.id"], name=op.f("fk_transfers_sender_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
        sa.UniqueConstraint("in_entry_id", name=op.f("uq_transfers_in_entry_id")),
        sa.UniqueConstraint("out_entry_id", name=op.f("uq_transfers_out_entry_id")),
    )
    op.create_index("ix_transfers_receiver", "transfers", ["receiver_member_id", "created_at"], unique=False)
    op.create_index("ix_transfers_sender", "transfers", ["sender_member_id", "created_at"], unique=False)
    op.add_column("lots", sa.Column("source_lot_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("lots", "source_lot_id")
    op.drop_index("ix_transfers_sender", table_name="transfers")
    op.drop_index("ix_transfers_receiver", table_name="transfers")
    op.drop_table("transfers")
