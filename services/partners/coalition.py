"""The coalition as an issuer of points: one partners row of kind COALITION.

Coalition-funded points (coalition promotions, referral bonuses) have the coalition as issuer
(DESIGN.md, Rulings). Representing it as a partners row keeps every lot and consumption's issuer
NOT NULL and every settlement query working: the ledger opens its issuance and breakage accounts
like any partner's. The row is created on demand (`INSERT … ON CONFLICT DO NOTHING` on a partial
unique index, so two first callers make one row) rather than by migration, because its currency is
the settlement currency setting, which a migration cannot read. It has no contract (settlement
treats it as the clearing house itself, never as a partner owing or being owed fees), no
credentials (it cannot sign in, so it never earns or redeems at a till) and is left out of the
admin's partner list.
"""

from __future__ import annotations

from services.partners.models import PartnerKind
from shared.settings import get_settings
from shared.sql import DbConnection, Sql

COALITION_NAME = "(the coalition)"
# Not cached per process: the first creation may roll back with the caller's transaction, and a
# coalition earn takes the ledger's general path anyway, where one indexed lookup is noise.

FIND = Sql("SELECT id FROM partners WHERE kind = 'COALITION'")
CREATE = Sql(
    "INSERT INTO partners (name, currency, earn_rate, kind)"
    " VALUES (CAST(:name AS text), CAST(:currency AS text), 0, CAST(:kind AS text))"
    " ON CONFLICT DO NOTHING"
)


async def coalition_issuer_id(conn: DbConnection) -> int:
    """The coalition's partners id, creating the row the first time it is needed."""
    found = await FIND.fetchval(conn)
    if found is None:
        settings = get_settings()
        await CREATE.execute(
            conn,
            name=COALITION_NAME,
            currency=settings.settlement_currency,
            kind=PartnerKind.COALITION.value,
        )
        found = await FIND.fetchval(conn)
    if found is None:
        raise AssertionError("the coalition's issuer row could not be created")
    return int(found)


async def find_coalition_issuer_id(conn: DbConnection) -> int | None:
    """The coalition's id if it was ever created (readers such as settlement never create it)."""
    found = await FIND.fetchval(conn)
    return int(found) if found is not None else None
