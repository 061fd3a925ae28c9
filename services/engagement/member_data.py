"""Engagement's part of a member's data export (`ledger.member_data`): the activities they
recorded (survey answers included), the gifts they sent and received, and their referrals.

    "activities": [{"activity": {"code", "name", "kind"}, "partner", "points", "occurredAt",
                    "npsScore", "comment", "data"}]                          oldest first
    "transfers": [{"direction": "SENT" | "RECEIVED", "counterpart", "points", "message",
                   "createdAt"}]                                             oldest first
    "referrals": {"code", "referredAt", "referred": [{"referredAt", "bonusPoints", "rewardedAt"}]}

What is the member's own goes in whole. Of other members only what this member already knows:
the member number of a gift's other side (typed by the sender, shown to the receiver), null once
that member is erased. Whom a member referred is theirs to know only as dates and bonuses (the
referred member's number is theirs), and who referred the member not at all (it is the
referrer's data; `referredAt` says that a code was used).
"""

from __future__ import annotations

from typing import Any

from services.ledger.member_data import PartnerRefs, at
from shared.sql import DbConnection, Sql

ACTIVITIES = Sql(
    "SELECT a.code, a.name, a.kind, r.partner_id, r.points, r.occurred_at, r.nps_score, r.comment,"
    " r.data FROM activity_records r JOIN activities a ON a.id = r.activity_id"
    " WHERE r.member_id = :m ORDER BY r.id"
)
TRANSFERS = Sql(
    "SELECT t.sender_member_id = :m AS sent, other.member_number, other.erased_at IS NOT NULL AS erased,"
    " t.points, t.message, t.created_at FROM transfers t"
    " JOIN members other ON other.id = CASE WHEN t.sender_member_id = :m"
    " THEN t.receiver_member_id ELSE t.sender_member_id END"
    " WHERE t.sender_member_id = :m OR t.receiver_member_id = :m ORDER BY t.id"
)
CODE = Sql("SELECT code FROM referral_codes WHERE member_id = :m")
REFERRED_BY = Sql("SELECT created_at FROM referrals WHERE referred_member_id = :m")
REFERRED = Sql(
    "SELECT r.created_at, b.points, b.rewarded_at FROM referrals r"
    " LEFT JOIN referral_bonuses b ON b.referral_id = r.id"
    " WHERE r.referrer_member_id = :m ORDER BY r.id"
)


async def section(conn: DbConnection, member_id: int, partner: PartnerRefs) -> dict[str, Any]:
    activities = await ACTIVITIES.fetch(conn, m=member_id)
    transfers = await TRANSFERS.fetch(conn, m=member_id)
    referred_by = await REFERRED_BY.fetchval(conn, m=member_id)
    return {
        "activities": [
            {
                "activity": {"code": r["code"], "name": r["name"], "kind": r["kind"]},
                "partner": partner(r["partner_id"]),
                "points": r["points"],
                "occurredAt": at(r["occurred_at"]),
                "npsScore": r["nps_score"],
                "comment": r["comment"],
                "data": r["data"],
            }
            for r in activities
        ],
        "transfers": [
            {
                "direction": "SENT" if r["sent"] else "RECEIVED",
                "counterpart": None if r["erased"] else r["member_number"],
                "points": r["points"],
                "message": r["message"],
                "createdAt": at(r["created_at"]),
            }
            for r in transfers
        ],
        "referrals": {
            "code": await CODE.fetchval(conn, m=member_id),
            "referredAt": at(referred_by),
            "referred": [
                {
                    "referredAt": at(r["created_at"]),
                    "bonusPoints": r["points"],
                    "rewardedAt": at(r["rewarded_at"]),
                }
                for r in await REFERRED.fetch(conn, m=member_id)
            ],
        },
    }
