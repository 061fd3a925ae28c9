"""Ledger accounts: one wallet per member; issuance, redemption and breakage per partner.

The ledger opens its own accounts, the first time it books for a partner or a member, so the
services to its left (partners, members) never reach into the books: onboarding a partner or
enrolling a member writes no ledger row. Opening is `INSERT … ON CONFLICT DO NOTHING`, so two
first bookings at once open one set of accounts; accounts are never closed, so a process
remembers a partner whose accounts it has seen open.
"""

from __future__ import annotations

from services.ledger.models import AccountKind
from shared.database import Database
from shared.sql import DbConnection, Sql

PARTNER_ACCOUNT_KINDS = (
    AccountKind.PARTNER_ISSUANCE,
    AccountKind.PARTNER_REDEMPTION,
    AccountKind.PARTNER_BREAKAGE,
)
# Accounts never close: once seen open, a partner's stay open for the life of the process.
OPEN_FOREVER_SECONDS = 366 * 24 * 3600

PARTNER_ACCOUNT = Sql(
    "SELECT id FROM ledger_accounts WHERE kind = :kind AND partner_id = :p AND member_id IS NULL"
)
OPEN_PARTNER_ACCOUNTS = Sql(
    "INSERT INTO ledger_accounts (kind, partner_id)"
    " SELECT k, CAST(:p AS bigint) FROM unnest(CAST(:kinds AS text[])) AS k ON CONFLICT DO NOTHING"
)
# The account and the wallet row are made in one statement, so neither exists without the other.
OPEN_WALLETS = Sql(
    "WITH todo AS (SELECT m FROM unnest(CAST(:members AS bigint[])) AS m"
    "   WHERE NOT EXISTS (SELECT 1 FROM wallets w WHERE w.member_id = m)),"
    " a AS (INSERT INTO ledger_accounts (kind, member_id) SELECT 'MEMBER_WALLET', m FROM todo"
    "   ON CONFLICT DO NOTHING RETURNING id, member_id)"
    " INSERT INTO wallets (member_id, account_id) SELECT member_id, id FROM a ON CONFLICT DO NOTHING"
)


async def open_partner_accounts(conn: DbConnection, partner_id: int) -> None:
    await OPEN_PARTNER_ACCOUNTS.execute(conn, p=partner_id, kinds=list(PARTNER_ACCOUNT_KINDS))


async def ensure_partner_accounts(db: Database, conn: DbConnection, partner_id: int) -> None:
    """Opens the partner's accounts unless this process has seen them open (hot path: earns)."""

    async def open_them() -> bool:
        await open_partner_accounts(conn, partner_id)
        return True

    await db.cache.get_or_load(("ledger-partner-accounts", partner_id), OPEN_FOREVER_SECONDS, open_them)


async def open_wallets(conn: DbConnection, member_ids: list[int]) -> None:
    """Opens a wallet (account and row) for each member that has none."""
    await OPEN_WALLETS.execute(conn, members=member_ids)


async def partner_account(conn: DbConnection, partner_id: int, kind: str) -> int:
    account_id = await PARTNER_ACCOUNT.fetchval(conn, kind=kind, p=partner_id)
    if account_id is None:
        await open_partner_accounts(conn, partner_id)
        account_id = await PARTNER_ACCOUNT.fetchval(conn, kind=kind, p=partner_id)
    if account_id is None:
        raise LookupError(f"partner {partner_id} has no {kind} account")
    return int(account_id)
