"""The ledger's read contract: the views other services read in aggregate instead of its tables.

Settlement prices the ledger's facts over whole periods (millions of rows); no per-call function
can give it that, so the ledger publishes what settlement prices by as views it owns. They are
simple views: PostgreSQL inlines them into the reader's query, and a column the reader does not
use costs nothing (the LEFT JOINs on unique keys are removed by the planner), so reading through
them is as fast as reading the tables. Changing a view's columns is changing the contract: its
test pins them.
"""

from __future__ import annotations

from shared.views import View

# Points leaving a lot (or, negative, coming back to it), with what settlement prices them by:
# the lot's issuer, the partner the points went to (the redeeming partner, or the refunding one for
# clawbacks and debt repayments; null for expiries and reversals), the movement's kind (REDEMPTION,
# REVERSAL, CLAWBACK, DEBT_REPAYMENT, EXPIRY, ERASURE — an erased member's points forfeited to
# breakage, which settlement prices exactly like EXPIRY), when it happened, its journal entry and when that
# entry was recorded, and, for a redemption and its cancellation, the price per point the
# redemption was made at (null for every other movement).
LEDGER_MOVEMENTS = View(
    "ledger_movements",
    """
SELECT lc.entry_id, lc.kind, lc.points, lc.issuing_partner_id, lc.counterparty_partner_id,
       lc.occurred_at, je.created_at AS recorded_at,
       COALESCE(r.redeem_price, rc.redeem_price) AS redeem_price
FROM lot_consumptions lc
LEFT JOIN journal_entries je ON je.id = lc.entry_id
LEFT JOIN redemptions r ON r.entry_id = lc.entry_id
LEFT JOIN redemptions rc ON rc.cancel_entry_id = lc.entry_id
""",
)

# Journal entries as a partner's own systems know them: kind (EARN, REDEEM, REVERSE,
# CANCEL_REDEMPTION, EXPIRE, ERASURE), the partner it happened at, signed points, the partner's order id,
# when it happened and when the ledger recorded it (recorded_at is indexed for recent entries),
# and, of its points, those issued by (EARN) or given back to (REVERSE) the coalition as issuer.
LEDGER_ENTRIES_RECORDED = View(
    "ledger_entries_recorded",
    """
SELECT id, kind, partner_id, points, order_id, occurred_at, created_at AS recorded_at,
       coalition_points
FROM journal_entries
""",
)

# Lots with points left that the worker has not expired yet, per member: what a member may still
# spend or lose. A reader states its own instant: a lot counts as available once `available_at`
# has passed, and as gone once `expires_at` has (the worker may not have posted the expiry yet).
# The WHERE matches the partial index the expiry job uses, so a reader by `expires_at` uses it.
LEDGER_OPEN_LOTS = View(
    "ledger_open_lots",
    """
SELECT id AS lot_id, member_id, issuing_partner_id, remaining, available_at, expires_at
FROM lots
WHERE remaining > 0 AND expired_at IS NULL
""",
)

# A member's journal entries (kind as in ledger_entries_recorded), for who did what when: the
# member's last earn or redemption, at any partner or at one.
LEDGER_MEMBER_ENTRIES = View(
    "ledger_member_entries",
    """
SELECT id AS entry_id, member_id, partner_id, kind, points, occurred_at
FROM journal_entries
""",
)

# A member's wallet: the points they owe (a refund took back points they had spent), which the
# available balance is net of.
LEDGER_WALLETS = View(
    "ledger_wallets",
    """
SELECT member_id, debt
FROM wallets
""",
)

VIEWS = (
    LEDGER_MOVEMENTS,
    LEDGER_ENTRIES_RECORDED,
    LEDGER_OPEN_LOTS,
    LEDGER_MEMBER_ENTRIES,
    LEDGER_WALLETS,
)
