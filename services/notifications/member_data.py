"""Notifications' part of a member's data export (`ledger.member_data`): the mail the coalition
sent or meant to send them.

    "mails": [{"kind", "status", "skipReason", "createdAt", "sentAt"}]   oldest first

The mail's content is not repeated: it is rendered from data the rest of the document holds
(a tier change, expiring points, a voucher, a gift).
"""

from __future__ import annotations

from typing import Any

from services.ledger.member_data import PartnerRefs, at
from shared.sql import DbConnection, Sql

MAILS = Sql(
    "SELECT kind, status, skip_reason, created_at, sent_at FROM member_notifications"
    " WHERE member_id = :m ORDER BY id"
)


async def section(conn: DbConnection, member_id: int, partner: PartnerRefs) -> dict[str, Any]:
    return {
        "mails": [
            {
                "kind": r["kind"],
                "status": r["status"],
                "skipReason": r["skip_reason"],
                "createdAt": at(r["created_at"]),
                "sentAt": at(r["sent_at"]),
            }
            for r in await MAILS.fetch(conn, m=member_id)
        ]
    }
