"""The ledger's invariants (DESIGN.md), checked against the whole database.

Each check is one aggregate query that returns the rows breaking it, so `coalition audit` stays
fast on millions of rows and prints every violation rather than the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared import clock, sql
from shared.database import Database


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str


CHECKS: list[tuple[str, str, str]] = [
    (
        "entry postings sum to zero",
        "SELECT entry_id, SUM(amount) AS total FROM postings GROUP BY entry_id HAVING SUM(amount) <> 0",
        "entry {entry_id} postings sum to {total}",
    ),
    (
        "all account balances sum to zero",
        "SELECT COALESCE(SUM(amount), 0) AS total FROM postings HAVING COALESCE(SUM(amount), 0) <> 0",
        "accounts sum to {total}",
    ),
    (
        "wallet balance equals its postings",
        "SELECT w.member_id, w.balance, COALESCE(SUM(p.amount), 0) AS posted FROM wallets w"
        " LEFT JOIN postings p ON p.account_id = w.account_id"
        " GROUP BY w.member_id, w.balance HAVING w.balance <> COALESCE(SUM(p.amount), 0)",
        "member {member_id}: wallet says {balance}, postings say {posted}",
    ),
    (
        "wallet balance equals unexpired lots minus debt",
        "SELECT w.member_id, w.balance, w.debt, COALESCE(l.held, 0) AS held FROM wallets w"
        " LEFT JOIN (SELECT member_id, SUM(remaining) AS held FROM lots"
        " WHERE expired_at IS NULL GROUP BY member_id) l ON l.member_id = w.member_id"
        " WHERE w.balance <> COALESCE(l.held, 0) - w.debt",
        "member {member_id}: wallet {balance} but lots hold {held} and debt is {debt}",
    ),
    (
        "wallet debt equals open debts",
        "SELECT w.member_id, w.debt, COALESCE(d.open, 0) AS open FROM wallets w"
        " LEFT JOIN (SELECT member_id, SUM(remaining) AS open FROM member_debts"
        " GROUP BY member_id) d ON d.member_id = w.member_id"
        " WHERE w.debt <> COALESCE(d.open, 0)",
        "member {member_id}: wallet debt {debt}, open debts {open}",
    ),
    (
        "a member in debt holds no spendable points",
        "SELECT w.member_id, w.debt, SUM(l.remaining) AS held FROM wallets w"
        " JOIN lots l ON l.member_id = w.member_id AND l.expired_at IS NULL AND l.remaining > 0"
        " AND l.expires_at > :now"
        " WHERE w.debt > 0 AND NOT EXISTS (SELECT 1 FROM hold_lots hl JOIN holds h"
        " ON h.id = hl.hold_id WHERE hl.lot_id = l.id AND h.status = 'ACTIVE' AND h.expires_at > :now)"
        " GROUP BY w.member_id, w.debt",
        "member {member_id} owes {debt} but holds {held} points",
    ),
    (
        "lot remaining within 0..points",
        "SELECT id, remaining, points FROM lots WHERE remaining < 0 OR remaining > points",
        "lot {id}: remaining {remaining} of {points}",
    ),
    (
        "every point of a lot is held, spent, reversed, expired or erased exactly once",
        "SELECT l.id, l.points, l.remaining, COALESCE(SUM(c.points), 0) AS moved FROM lots l"
        " LEFT JOIN lot_consumptions c ON c.lot_id = l.id"
        " GROUP BY l.id HAVING l.points <> l.remaining + COALESCE(SUM(c.points), 0)",
        "lot {id}: {points} points but {remaining} remain and {moved} moved out",
    ),
    (
        "a purchase's EARN entry names its member, partner and order id",
        "SELECT p.id, p.entry_id FROM purchases p JOIN journal_entries e ON e.id = p.entry_id"
        " WHERE e.kind <> 'EARN' OR e.member_id <> p.member_id OR e.partner_id <> p.partner_id"
        " OR e.order_id IS DISTINCT FROM p.order_id",
        "purchase {id}: entry {entry_id} is not its EARN at its partner and order id",
    ),
    (
        "an expired lot holds nothing",
        "SELECT id, remaining FROM lots WHERE expired_at IS NOT NULL AND remaining <> 0",
        "lot {id} is expired but holds {remaining}",
    ),
    (
        "a redemption's lot movements equal its points",
        "SELECT r.id, r.points, COALESCE(SUM(c.points), 0) AS moved FROM redemptions r"
        " LEFT JOIN lot_consumptions c ON c.entry_id = r.entry_id"
        " GROUP BY r.id, r.points HAVING r.points <> COALESCE(SUM(c.points), 0)",
        "redemption {id}: {points} points but lots gave {moved}",
    ),
    (
        "a cancellation gives back exactly what its redemption took",
        "SELECT r.id, COALESCE(SUM(c.points), 0) AS net FROM redemptions r"
        " JOIN lot_consumptions c ON c.entry_id IN (r.entry_id, r.cancel_entry_id)"
        " AND c.kind = 'REDEMPTION' WHERE r.cancel_entry_id IS NOT NULL"
        " GROUP BY r.id HAVING COALESCE(SUM(c.points), 0) <> 0",
        "cancelled redemption {id} still moves {net} points",
    ),
    (
        "a partner's redemption account equals the points spent with it",
        "SELECT a.partner_id, COALESCE(p.posted, 0) AS posted, COALESCE(c.spent, 0) AS spent"
        " FROM ledger_accounts a"
        " LEFT JOIN (SELECT account_id, SUM(amount) AS posted FROM postings GROUP BY account_id)"
        " p ON p.account_id = a.id"
        " LEFT JOIN (SELECT counterparty_partner_id AS partner_id, SUM(points) AS spent"
        " FROM lot_consumptions WHERE kind = 'REDEMPTION' GROUP BY counterparty_partner_id)"
        " c ON c.partner_id = a.partner_id"
        " WHERE a.kind = 'PARTNER_REDEMPTION' AND COALESCE(p.posted, 0) <> COALESCE(c.spent, 0)",
        "partner {partner_id}: redemption account {posted}, points spent there {spent}",
    ),
    (
        "a partner's breakage account equals its points that expired or were erased",
        "SELECT a.partner_id, COALESCE(p.posted, 0) AS posted, COALESCE(c.expired, 0) AS expired"
        " FROM ledger_accounts a"
        " LEFT JOIN (SELECT account_id, SUM(amount) AS posted FROM postings GROUP BY account_id)"
        " p ON p.account_id = a.id"
        " LEFT JOIN (SELECT issuing_partner_id AS partner_id, SUM(points) AS expired"
        " FROM lot_consumptions WHERE kind IN ('EXPIRY', 'ERASURE') GROUP BY issuing_partner_id)"
        " c ON c.partner_id = a.partner_id"
        " WHERE a.kind = 'PARTNER_BREAKAGE' AND COALESCE(p.posted, 0) <> COALESCE(c.expired, 0)",
        "partner {partner_id}: breakage account {posted}, its points expired {expired}",
    ),
    (
        "a partner's issuance account equals issued minus taken back",
        "WITH issued AS (SELECT issuing_partner_id AS partner_id, SUM(points) AS n FROM lots"
        " WHERE source_lot_id IS NULL GROUP BY 1),"
        " back AS (SELECT counterparty_partner_id AS partner_id, SUM(points) AS n"
        " FROM lot_consumptions WHERE kind IN ('REVERSAL', 'CLAWBACK') GROUP BY 1),"
        " debts AS (SELECT creditor_partner_id AS partner_id, SUM(points) AS n FROM member_debts"
        " GROUP BY 1), posted AS (SELECT account_id, SUM(amount) AS n FROM postings GROUP BY 1)"
        " SELECT a.partner_id, COALESCE(po.n, 0) AS posted,"
        " COALESCE(b.n, 0) + COALESCE(d.n, 0) - COALESCE(i.n, 0) AS expected"
        " FROM ledger_accounts a LEFT JOIN posted po ON po.account_id = a.id"
        " LEFT JOIN issued i ON i.partner_id = a.partner_id"
        " LEFT JOIN back b ON b.partner_id = a.partner_id"
        " LEFT JOIN debts d ON d.partner_id = a.partner_id"
        " WHERE a.kind = 'PARTNER_ISSUANCE'"
        " AND COALESCE(po.n, 0) <> COALESCE(b.n, 0) + COALESCE(d.n, 0) - COALESCE(i.n, 0)",
        "partner {partner_id}: issuance account {posted}, expected {expected}",
    ),
    (
        "a hold reserves exactly its points",
        "SELECT h.id, h.points, COALESCE(SUM(hl.points), 0) AS reserved FROM holds h"
        " LEFT JOIN hold_lots hl ON hl.hold_id = h.id GROUP BY h.id, h.points"
        " HAVING h.points <> COALESCE(SUM(hl.points), 0)",
        "hold {id}: {points} points but its lots reserve {reserved}",
    ),
    (
        "live holds never reserve more than a lot holds",
        "SELECT l.id, l.remaining, SUM(hl.points) AS held FROM lots l"
        " JOIN hold_lots hl ON hl.lot_id = l.id JOIN holds h ON h.id = hl.hold_id"
        " WHERE h.status = 'ACTIVE' AND h.expires_at > :now"
        " GROUP BY l.id, l.remaining HAVING SUM(hl.points) > l.remaining",
        "lot {id}: holds reserve {held} of its {remaining}",
    ),
    (
        "a captured hold is exactly its redemption",
        "SELECT h.id, h.captured_points, r.points FROM holds h"
        " LEFT JOIN redemptions r ON r.id = h.redemption_id WHERE h.status = 'CAPTURED'"
        " AND (r.id IS NULL OR r.points <> h.captured_points OR r.order_id <> h.order_id)",
        "hold {id}: captured {captured_points}, redemption has {points}",
    ),
    (
        "a purchase's coalition share is exactly its coalition lot",
        "SELECT p.id, p.coalition_points, COALESCE(l.points, 0) AS lot FROM purchases p"
        " LEFT JOIN lots l ON l.id = p.coalition_lot_id"
        " WHERE (p.coalition_points > 0 OR p.coalition_lot_id IS NOT NULL)"
        " AND (l.id IS NULL OR l.points <> p.coalition_points OR l.issuing_partner_id"
        " IS DISTINCT FROM (SELECT id FROM partners WHERE kind = 'COALITION'))",
        "purchase {id}: coalition share {coalition_points}, its coalition lot {lot}",
    ),
    (
        "coalition-issued points equal the points of the coalition's lots",
        "SELECT issued, lots FROM (SELECT"
        " (SELECT COALESCE(SUM(coalition_points), 0) FROM journal_entries"
        " WHERE kind IN ('EARN', 'REFERRAL', 'ACTIVITY')) AS issued,"
        " (SELECT COALESCE(SUM(l.points), 0) FROM lots l JOIN partners p ON p.id = l.issuing_partner_id"
        " WHERE p.kind = 'COALITION' AND l.source_lot_id IS NULL) AS lots) x WHERE issued <> lots",
        "the coalition issued {issued} points, its lots hold {lots}",
    ),
    (
        "a purchase's reversed points match its reversal entries",
        "SELECT p.id, p.points_reversed, COALESCE(-SUM(e.points), 0) AS entries FROM purchases p"
        " LEFT JOIN journal_entries e ON e.kind = 'REVERSE' AND e.related_entry_id = p.entry_id"
        " GROUP BY p.id, p.points_reversed HAVING p.points_reversed <> COALESCE(-SUM(e.points), 0)",
        "purchase {id}: {points_reversed} points reversed but entries say {entries}",
    ),
]


# Every reference column of the append-only ledger tables, which carry no foreign keys (the
# checks were more than half of a bulk batch's write: docs/decisions.md). The audit checks them
# instead: a row pointing at nothing is a violation like any other. (table, column, target table)
REFERENCES: list[tuple[str, str, str]] = [
    ("journal_entries", "member_id", "members"),
    ("journal_entries", "partner_id", "partners"),
    ("postings", "entry_id", "journal_entries"),
    ("postings", "account_id", "ledger_accounts"),
    ("lots", "member_id", "members"),
    ("lots", "issuing_partner_id", "partners"),
    ("lots", "earn_entry_id", "journal_entries"),
    ("lot_consumptions", "entry_id", "journal_entries"),
    ("lot_consumptions", "lot_id", "lots"),
    ("lot_consumptions", "member_id", "members"),
    ("lot_consumptions", "issuing_partner_id", "partners"),
    ("lot_consumptions", "counterparty_partner_id", "partners"),
    ("purchases", "partner_id", "partners"),
    ("purchases", "member_id", "members"),
    ("purchases", "entry_id", "journal_entries"),
    ("purchases", "lot_id", "lots"),
    ("purchases", "coalition_lot_id", "lots"),
]


def _reference_check(table: str, column: str, target: str) -> tuple[str, str, str]:
    """One anti-join per reference (a hash anti-join: one scan of each table)."""
    return (
        f"every {table}.{column} names a row of {target}",
        f"SELECT t.id, t.{column} AS ref FROM {table} t WHERE t.{column} IS NOT NULL"
        f" AND NOT EXISTS (SELECT 1 FROM {target} r WHERE r.id = t.{column})",
        f"{table} {{id}}: {column} {{ref}} is no row of {target}",
    )


CHECKS += [_reference_check(*reference) for reference in REFERENCES]


async def audit(db: Database, on_check: Callable[[str], None] | None = None) -> list[Violation]:
    """Every violation of every invariant; "now" is the application's clock, as for reads.
    `on_check` hears the name of each check as it starts (a progress display: on a big ledger
    each check scans a table)."""
    violations: list[Violation] = []
    now = clock.now()
    async with sql.transaction(db) as conn:  # one snapshot for every check
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for name, query, template in CHECKS:
            if on_check is not None:
                on_check(name)
            params = {"now": now} if ":now" in query else {}
            for row in await sql.Sql(query).fetch(conn, **params):
                violations.append(Violation(name, template.format(**dict(row))))
    return violations
