"""Ledger accounts: one wallet per member; issuance, redemption and breakage per partner."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.models import Account, AccountKind
from shared.sql import DbConnection, Sql

PARTNER_ACCOUNT_KINDS = (
    AccountKind.PARTNER_ISSUANCE,
    AccountKind.PARTNER_REDEMPTION,
    AccountKind.PARTNER_BREAKAGE,
)

PARTNER_ACCOUNT = Sql(
    "SELECT id FROM ledger_accounts WHERE kind = :kind AND partner_id = :p AND member_id IS NULL"
)


async def open_partner_accounts(session: AsyncSession, partner_id: int) -> None:
    for kind in PARTNER_ACCOUNT_KINDS:
        session.add(Account(kind=kind, partner_id=partner_id))
    await session.flush()


async def open_wallet(session: AsyncSession, member_id: int) -> None:
    """Every member gets a wallet account and wallet row at creation, in the same transaction."""
    await session.execute(
        text(
            "WITH a AS (INSERT INTO ledger_accounts (kind, member_id) VALUES (:kind, :m) RETURNING id)"
            " INSERT INTO wallets (member_id, account_id) SELECT CAST(:m AS bigint), id FROM a"
        ),
        {"kind": AccountKind.MEMBER_WALLET, "m": member_id},
    )


async def partner_account(conn: DbConnection, partner_id: int, kind: str) -> int:
    account_id = await PARTNER_ACCOUNT.fetchval(conn, kind=kind, p=partner_id)
    if account_id is None:
        raise LookupError(f"partner {partner_id} has no {kind} account")
    return int(account_id)
