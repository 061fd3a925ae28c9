"""Ledger accounts: opening them, and finding a partner's accounts without a query per posting.

A partner's account ids never change once opened, so they are cached per process; member
wallets are read under their row lock on every operation anyway.
"""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.models import Account, AccountKind

PARTNER_ACCOUNT_KINDS = (
    AccountKind.PARTNER_ISSUANCE,
    AccountKind.PARTNER_REDEMPTION,
    AccountKind.PARTNER_BREAKAGE,
)

# Keyed by database too: tests and benches may talk to more than one database in a process.
_partner_accounts: dict[tuple[str, int, str], int] = {}


async def open_partner_accounts(session: AsyncSession, partner_id: int) -> None:
    for kind in PARTNER_ACCOUNT_KINDS:
        session.add(Account(kind=kind, partner_id=partner_id))
    await session.flush()


async def open_wallet(session: AsyncSession, member_id: int) -> None:
    """Every member gets a wallet account and wallet row at creation, in the same transaction."""
    await session.execute(
        text(
            "WITH a AS (INSERT INTO ledger_accounts (kind, member_id) VALUES (:kind, :m) "
            "RETURNING id) INSERT INTO wallets (member_id, account_id) SELECT CAST(:m AS bigint), id FROM a"
        ),
        {"kind": AccountKind.MEMBER_WALLET, "m": member_id},
    )


async def partner_account(session: AsyncSession, partner_id: int, kind: str) -> int:
    database = str(session.bind.url) if session.bind is not None else ""
    cached = _partner_accounts.get((database, partner_id, kind))
    if cached is not None:
        return cached
    rows = await session.execute(
        select(Account.kind, Account.id).where(Account.partner_id == partner_id, Account.member_id.is_(None))
    )
    found = {k: i for k, i in rows.all()}
    if kind not in found:
        raise LookupError(f"partner {partner_id} has no {kind} account")
    for k, i in found.items():
        _partner_accounts[(database, partner_id, k)] = i
    return found[kind]
