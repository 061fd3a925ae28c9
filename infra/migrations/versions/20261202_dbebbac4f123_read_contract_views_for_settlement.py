"""read contract views for settlement: ledger_movements, ledger_entries_recorded,
partner_contract_terms; a redemption's entries are unique

Revision ID: dbebbac4f123
Revises: ef232bbcf753
Create Date: 2026-12-02 17:52:00.564962

The views' text is copied from their owners (services/ledger/views.py,
services/partners/views.py) as it was at this revision: a migration is frozen history. A later
change to a view is a new migration.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "dbebbac4f123"
down_revision: str | None = "ef232bbcf753"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEWS = {
    "ledger_movements": """
SELECT lc.entry_id, lc.kind, lc.points, lc.issuing_partner_id, lc.counterparty_partner_id,
       lc.occurred_at, je.created_at AS recorded_at,
       COALESCE(r.redeem_price, rc.redeem_price) AS redeem_price
FROM lot_consumptions lc
LEFT JOIN journal_entries je ON je.id = lc.entry_id
LEFT JOIN redemptions r ON r.entry_id = lc.entry_id
LEFT JOIN redemptions rc ON rc.cancel_entry_id = lc.entry_id
""",
    "ledger_entries_recorded": """
SELECT id, kind, partner_id, points, order_id, occurred_at, created_at AS recorded_at
FROM journal_entries
""",
    "partner_contract_terms": """
SELECT partner_id, effective_from,
       lead(effective_from, 1, 'infinity') OVER (PARTITION BY partner_id ORDER BY effective_from)
         AS effective_to,
       currency, issue_price, redeem_price, issue_fee_per_point, breakage_share
FROM partner_contracts
""",
}


def upgrade() -> None:
    # An entry belongs to at most one redemption (as its entry, or as its cancellation's): unique
    # indexes let the planner drop ledger_movements' joins to redemptions when no price is read.
    op.drop_index(
        op.f("ix_redemptions_cancel_entry"),
        table_name="redemptions",
        postgresql_where="(cancel_entry_id IS NOT NULL)",
    )
    op.create_index("ix_redemptions_cancel_entry", "redemptions", ["cancel_entry_id"], unique=True)
    op.drop_index(op.f("ix_redemptions_entry"), table_name="redemptions")
    op.create_index("ix_redemptions_entry", "redemptions", ["entry_id"], unique=True)
    for name, select in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {select.strip()}")


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_index("ix_redemptions_entry", table_name="redemptions")
    op.create_index(op.f("ix_redemptions_entry"), "redemptions", ["entry_id"], unique=False)
    op.drop_index("ix_redemptions_cancel_entry", table_name="redemptions")
    op.create_index(
        op.f("ix_redemptions_cancel_entry"),
        "redemptions",
        ["cancel_entry_id"],
        unique=False,
        postgresql_where="(cancel_entry_id IS NOT NULL)",
    )
