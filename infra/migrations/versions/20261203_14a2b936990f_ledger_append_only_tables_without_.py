"""ledger append-only tables without foreign keys

The foreign-key checks were 50-60 % of a bulk batch's write statement (bench/bulk_explain.py).
The references point at rows never deleted (partners, members, accounts) or written by the same
statement (an entry's postings and lot); `coalition audit` checks every one of them instead
(services/ledger/audit.py, REFERENCES). docs/decisions.md, "Bulk earning", has the figures.

Revision ID: 14a2b936990f
Revises: 53b00ad56b2c
Create Date: 2026-12-03 16:39:27.515142
"""

from collections.abc import Sequence

from alembic import op

revision: str = "14a2b936990f"
down_revision: str | None = "53b00ad56b2c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("fk_journal_entries_member_id_members"), "journal_entries", type_="foreignkey")
    op.drop_constraint(op.f("fk_journal_entries_partner_id_partners"), "journal_entries", type_="foreignkey")
    op.drop_constraint(
        op.f("fk_lot_consumptions_issuing_partner_id_partners"), "lot_consumptions", type_="foreignkey"
    )
    op.drop_constraint(op.f("fk_lot_consumptions_member_id_members"), "lot_consumptions", type_="foreignkey")
    op.drop_constraint(
        op.f("fk_lot_consumptions_counterparty_partner_id_partners"), "lot_consumptions", type_="foreignkey"
    )
    op.drop_constraint(op.f("fk_lot_consumptions_lot_id_lots"), "lot_consumptions", type_="foreignkey")
    op.drop_constraint(
        op.f("fk_lot_consumptions_entry_id_journal_entries"), "lot_consumptions", type_="foreignkey"
    )
    op.drop_constraint(op.f("fk_lots_member_id_members"), "lots", type_="foreignkey")
    op.drop_constraint(op.f("fk_lots_earn_entry_id_journal_entries"), "lots", type_="foreignkey")
    op.drop_constraint(op.f("fk_lots_issuing_partner_id_partners"), "lots", type_="foreignkey")
    op.drop_constraint(op.f("fk_postings_entry_id_journal_entries"), "postings", type_="foreignkey")
    op.drop_constraint(op.f("fk_postings_account_id_ledger_accounts"), "postings", type_="foreignkey")
    op.drop_constraint(op.f("fk_purchases_entry_id_journal_entries"), "purchases", type_="foreignkey")
    op.drop_constraint(op.f("fk_purchases_member_id_members"), "purchases", type_="foreignkey")
    op.drop_constraint(op.f("fk_purchases_partner_id_partners"), "purchases", type_="foreignkey")
    op.drop_constraint(op.f("fk_purchases_lot_id_lots"), "purchases", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(op.f("fk_purchases_lot_id_lots"), "purchases", "lots", ["lot_id"], ["id"])
    op.create_foreign_key(
        op.f("fk_purchases_partner_id_partners"), "purchases", "partners", ["partner_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_purchases_member_id_members"), "purchases", "members", ["member_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_purchases_entry_id_journal_entries"), "purchases", "journal_entries", ["entry_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_postings_account_id_ledger_accounts"), "postings", "ledger_accounts", ["account_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_postings_entry_id_journal_entries"), "postings", "journal_entries", ["entry_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_lots_issuing_partner_id_partners"), "lots", "partners", ["issuing_partner_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_lots_earn_entry_id_journal_entries"), "lots", "journal_entries", ["earn_entry_id"], ["id"]
    )
    op.create_foreign_key(op.f("fk_lots_member_id_members"), "lots", "members", ["member_id"], ["id"])
    op.create_foreign_key(
        op.f("fk_lot_consumptions_entry_id_journal_entries"),
        "lot_consumptions",
        "journal_entries",
        ["entry_id"],
        ["id"],
    )
    op.create_foreign_key(
        op.f("fk_lot_consumptions_lot_id_lots"), "lot_consumptions", "lots", ["lot_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_lot_consumptions_counterparty_partner_id_partners"),
        "lot_consumptions",
        "partners",
        ["counterparty_partner_id"],
        ["id"],
    )
    op.create_foreign_key(
        op.f("fk_lot_consumptions_member_id_members"), "lot_consumptions", "members", ["member_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_lot_consumptions_issuing_partner_id_partners"),
        "lot_consumptions",
        "partners",
        ["issuing_partner_id"],
        ["id"],
    )
    op.create_foreign_key(
        op.f("fk_journal_entries_partner_id_partners"), "journal_entries", "partners", ["partner_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_journal_entries_member_id_members"), "journal_entries", "members", ["member_id"], ["id"]
    )
