"""A member's own data, all of it, as one JSON document (the right of access and portability).

`exportMyData` (GraphQL) and `GET /account/export.json` both answer `export_my_data`. Only the
member's own token may ask (`principal.member_id`); a partner or admin token is FORBIDDEN, and an
erased member has nothing left to export (their token is refused like an unknown one).

The document (version 1; every instant ISO 8601 UTC, points whole numbers, partners by global ID
and name):

    {"version": 1, "exportedAt",
     "profile": {"memberNumber", "email", "birthDate", "createdAt", "activated", "passwordChangedAt",
                 "settings": {"requireCodeToSpend", "language", "notifications": {"tierChanges",
                              "expiringPoints", "rewardVouchers", "transfersReceived"}}},
     "links": [{"partner": {"id", "name"}, "linkedAt", "how": "ENROLLED" | "CARD_PRESENTED",
                "partnerCustomerRef"}],
     "balance": {"available", "pending", "held"},
     "transactions": [{"id", "kind", "points", "status", "orderId", "occurredAt", "partner"}],
     "lots": [{"id", "issuer", "points", "remaining", "earnedAt", "availableAt", "expiresAt",
               "closedAt"}],
     "holds": [{"id", "partner", "orderId", "points", "status", "capturedPoints", "createdAt",
                "expiresAt", "closedAt"}],
     "vouchers": [{"code", "partner", "rewardId", "quantity", "points", "occurredAt", "cancelled"}],
     "debts": [{"creditor", "points", "remaining"}],
     "tier": {"name", "since", "qualifiesUntil"} | null,
     ...the sections of the services above the ledger (`Section`)}

Transactions are newest first, everything else oldest first. The document is built from one
REPEATABLE READ snapshot, so its parts agree with each other: the services above the ledger
(earning's promo codes, engagement's activities, gifts and referrals, notifications' mail) hold
data on the member too, and the ledger cannot import them (DESIGN.md: dependencies point one
way), so each passes in a `Section` that reads its own tables in that same snapshot; the gateway
hands every service's section in (`services/gateway/member_export.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from services.ledger import queries
from services.members import tiers as member_tiers
from services.partners import service as partners
from shared import clock, sql
from shared.access import Principal
from shared.database import Database
from shared.errors import Forbidden
from shared.ids import to_global_id
from shared.sql import DbConnection, Sql

VERSION = 1

PROFILE = Sql(
    "SELECT member_number, email, birth_date, created_at, password_hash IS NOT NULL AS activated,"
    " password_changed_at, require_code_to_spend, language, mail_tier_changes, mail_expiring_points,"
    " mail_reward_vouchers, mail_transfers_received FROM members WHERE id = :m AND erased_at IS NULL"
)
LINKS = Sql(
    "SELECT partner_id, created_at, partner_customer_ref FROM enrollments WHERE member_id = :m ORDER BY id"
)
LOTS = Sql(
    "SELECT id, issuing_partner_id, points, remaining, earned_at, available_at, expires_at, expired_at"
    " FROM lots WHERE member_id = :m ORDER BY id"
)
HOLDS = Sql(
    "SELECT id, partner_id, order_id, points, status, captured_points, created_at, expires_at, closed_at"
    " FROM holds WHERE member_id = :m ORDER BY id"
)
VOUCHERS = Sql(
    "SELECT voucher_code, partner_id, reward_id, quantity, points, occurred_at,"
    " cancel_entry_id IS NOT NULL AS cancelled FROM redemptions"
    " WHERE member_id = :m AND reward_id IS NOT NULL ORDER BY id"
)
DEBTS = Sql(
    "SELECT creditor_partner_id, points, remaining FROM member_debts WHERE member_id = :m ORDER BY id"
)
TIER = member_tiers.MEMBER_TIER
ALL = 2**62  # the transactions statement pages; an export takes every page at once


def at(value: datetime | None) -> str | None:
    """An instant as the document writes it (ISO 8601), or null."""
    return value.isoformat() if value is not None else None


class PartnerRefs:
    """`{"id", "name"}` of a partner wherever the document names one: handed out while the
    snapshot is read (the name left blank), named all at once afterwards from the partners'
    cache, so no section looks partners up itself."""

    def __init__(self) -> None:
        self._refs: dict[int, list[dict[str, str]]] = {}

    def __call__(self, partner_id: int) -> dict[str, str]:
        ref = {"id": to_global_id("Partner", partner_id), "name": ""}
        self._refs.setdefault(partner_id, []).append(ref)
        return ref

    async def name_all(self, db: Database) -> None:
        found = await partners.partners_by_id(db, sorted(self._refs))
        for partner_id, refs in self._refs.items():
            partner = found.get(partner_id)
            for ref in refs:
                ref["name"] = partner.name if partner is not None else ""


# A part of the document held by a service above the ledger: given the snapshot's connection, the
# member's id and the partner references, the top-level keys it adds (none the ledger writes).
Section = Callable[[DbConnection, int, PartnerRefs], Awaitable[dict[str, Any]]]


async def export_my_data(
    db: Database, principal: Principal, sections: Sequence[Section] = ()
) -> dict[str, Any]:
    """Everything held on the calling member (see the module docstring for the shape), with
    every section's keys read in the same snapshot."""
    member_id = principal.member_id
    if member_id is None:
        raise Forbidden("only a member's own token may export their data")
    async with sql.transaction(db) as conn:
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        profile = await PROFILE.fetchrow(conn, m=member_id)
        if profile is None:  # erased since the token was issued
            raise Forbidden("this member's data has been erased")
        links = await LINKS.fetch(conn, m=member_id)
        balance = (await queries.balances(conn, [member_id]))[member_id]
        transactions = await queries.ALL_TRANSACTIONS.fetch(
            conn, m=member_id, p=None, now=clock.now(), after=None, limit=ALL
        )
        lots = await LOTS.fetch(conn, m=member_id)
        holds = await HOLDS.fetch(conn, m=member_id)
        vouchers = await VOUCHERS.fetch(conn, m=member_id)
        debts = await DEBTS.fetch(conn, m=member_id)
        tier = await TIER.fetchrow(conn, m=member_id)
        partner = PartnerRefs()
        extra: dict[str, Any] = {}
        for section in sections:
            extra.update(await section(conn, member_id, partner))
    document = {
        "version": VERSION,
        "exportedAt": at(clock.now()),
        "profile": {
            "memberNumber": profile["member_number"],
            "email": profile["email"],
            "birthDate": profile["birth_date"].isoformat() if profile["birth_date"] else None,
            "createdAt": at(profile["created_at"]),
            "activated": profile["activated"],
            "passwordChangedAt": at(profile["password_changed_at"]),
            "settings": {
                "requireCodeToSpend": profile["require_code_to_spend"],
                "language": profile["language"],
                "notifications": {
                    "tierChanges": profile["mail_tier_changes"],
                    "expiringPoints": profile["mail_expiring_points"],
                    "rewardVouchers": profile["mail_reward_vouchers"],
                    "transfersReceived": profile["mail_transfers_received"],
                },
            },
        },
        "links": [
            {
                "partner": partner(r["partner_id"]),
                "linkedAt": at(r["created_at"]),
                "how": "ENROLLED" if r["partner_customer_ref"] is not None else "CARD_PRESENTED",
                "partnerCustomerRef": r["partner_customer_ref"],
            }
            for r in links
        ],
        "balance": {"available": balance.available, "pending": balance.pending, "held": balance.held},
        "transactions": [
            {
                "id": to_global_id("Transaction", r["id"]),
                "kind": r["kind"],
                "points": r["points"],
                "status": r["status"],
                "orderId": r["order_id"],
                "occurredAt": at(r["occurred_at"]),
                "partner": partner(r["partner_id"]),
            }
            for r in transactions
        ],
        "lots": [
            {
                "id": r["id"],
                "issuer": partner(r["issuing_partner_id"]),
                "points": r["points"],
                "remaining": r["remaining"],
                "earnedAt": at(r["earned_at"]),
                "availableAt": at(r["available_at"]),
                "expiresAt": at(r["expires_at"]),
                "closedAt": at(r["expired_at"]),
            }
            for r in lots
        ],
        "holds": [
            {
                "id": to_global_id("Authorization", r["id"]),
                "partner": partner(r["partner_id"]),
                "orderId": r["order_id"],
                "points": r["points"],
                "status": r["status"],
                "capturedPoints": r["captured_points"],
                "createdAt": at(r["created_at"]),
                "expiresAt": at(r["expires_at"]),
                "closedAt": at(r["closed_at"]),
            }
            for r in holds
        ],
        "vouchers": [
            {
                "code": r["voucher_code"],
                "partner": partner(r["partner_id"]),
                "rewardId": to_global_id("Reward", r["reward_id"]),
                "quantity": r["quantity"],
                "points": r["points"],
                "occurredAt": at(r["occurred_at"]),
                "cancelled": r["cancelled"],
            }
            for r in vouchers
        ],
        "debts": [
            {
                "creditor": partner(r["creditor_partner_id"]),
                "points": r["points"],
                "remaining": r["remaining"],
            }
            for r in debts
        ],
        "tier": (
            {
                "name": tier["name"],
                "since": at(tier["since"]),
                "qualifiesUntil": at(tier["qualifies_until"]),
            }
            if tier is not None
            else None
        ),
    }
    clash = document.keys() & extra.keys()
    assert not clash, f"an export section rewrites the ledger's {sorted(clash)}"
    document.update(extra)
    await partner.name_all(db)
    return document


async def require_live_member(db: Database, principal: Principal) -> None:
    """The hook for member-token operations: an erased member's access token is refused. Member
    tokens are short-lived, and `revoke_member_tokens` (refresh tokens, on another branch) will
    revoke them at erasure; until then an operation that must not serve an erased member asks
    this (one primary-key read)."""
    if principal.member_id is None:
        return
    async with sql.connection(db) as conn:
        live = await LIVE.fetchval(conn, m=principal.member_id)
    if not live:
        raise Forbidden("this member's data has been erased")


LIVE = Sql("SELECT erased_at IS NULL FROM members WHERE id = :m")
