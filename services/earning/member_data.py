"""Earning's part of a member's data export (`ledger.member_data`): the promo codes they used.

    "promoCodes": [{"code", "partner", "orderId", "usedAt", "releasedAt"}]   oldest first

A use released by a full refund stays listed, with `releasedAt`: it happened.
"""

from __future__ import annotations

from typing import Any

from services.ledger.member_data import PartnerRefs, at
from shared.sql import DbConnection, Sql

USES = Sql(
    "SELECT c.code, u.partner_id, u.order_id, u.used_at, u.released_at FROM promo_code_uses u"
    " JOIN promo_codes c ON c.id = u.code_id WHERE u.member_id = :m ORDER BY u.id"
)


async def section(conn: DbConnection, member_id: int, partner: PartnerRefs) -> dict[str, Any]:
    return {
        "promoCodes": [
            {
                "code": r["code"],
                "partner": partner(r["partner_id"]),
                "orderId": r["order_id"],
                "usedAt": at(r["used_at"]),
                "releasedAt": at(r["released_at"]),
            }
            for r in await USES.fetch(conn, m=member_id)
        ]
    }
