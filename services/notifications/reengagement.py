"""Re-engagement: the members a campaign would target — inactive for a while, points to spend.

`members_to_reengage` lists members with no earn, redemption or recorded activity for
`inactive_for` and at least `min_points` available, by member id, one bounded statement per page
(the page size is capped). It reads the published views of the ledger (`ledger_open_lots`,
`ledger_member_entries`, `ledger_wallets`) and of members (`member_directory`, `member_links`),
never their tables.

Who sees what, as the tenancy rules say:
- an admin (`admin:partners`) sees every member not erased; inactivity is measured across the
  coalition, and the list carries the member's email;
- a partner (`members:read`) sees only its linked members; inactivity is measured at the partner
  (of a member's history a partner sees only what happened at it, so neither the filter nor
  `lastActivityAt` may tell it about other partners); the list carries the partner's own customer
  ref instead of the email (a partner does not read members' emails anywhere else either).
A member never active (at the partner) counts as inactive since they joined (were linked).
"Available" is what the balance calls available (points past their return window, not expired,
net of debt), except that short checkout holds are not taken out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared import clock, sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import Validator
from shared.pagination import Page, decode_cursor, make_page, page_size
from shared.sql import Sql

ACTIVITY_KINDS = ("EARN", "REDEEM")


@dataclass(frozen=True)
class MemberToReengage:
    member_id: int
    member_number: str
    email: str | None  # admins only
    partner_customer_ref: str | None  # partners only: their own ref for the member
    available_points: int
    last_activity_at: datetime | None  # null: never (at the partner, for a partner)


_PAGE = """
SELECT d.member_id, d.member_number, {email} AS email, {ref} AS partner_customer_ref,
       b.available, a.last_activity_at
FROM {members}
CROSS JOIN LATERAL (
  SELECT max(e.occurred_at) AS last_activity_at FROM ledger_member_entries e
  WHERE e.member_id = d.member_id AND e.kind IN ('EARN', 'REDEEM', 'ACTIVITY') {at_partner}
) a
CROSS JOIN LATERAL (
  SELECT CAST(COALESCE(SUM(l.remaining) FILTER (WHERE l.available_at <= :now), 0) AS bigint)
         - COALESCE((SELECT w.debt FROM ledger_wallets w WHERE w.member_id = d.member_id), 0) AS available
  FROM ledger_open_lots l WHERE l.member_id = d.member_id AND l.expires_at > :now
) b
WHERE d.erased_at IS NULL AND (CAST(:after AS bigint) IS NULL OR d.member_id > :after)
  AND COALESCE(a.last_activity_at, {joined}) < :since
  AND b.available >= :min_points
ORDER BY d.member_id
LIMIT :limit
"""
ALL_MEMBERS = Sql(
    _PAGE.format(
        email="d.email",
        ref="CAST(NULL AS text)",
        members="member_directory d",
        at_partner="AND CAST(:p AS bigint) IS NULL",
        joined="d.created_at",
    )
)
# From the partner's links, in member order (the links' unique (partner_id, member_id) index).
PARTNER_MEMBERS = Sql(
    _PAGE.format(
        email="CAST(NULL AS text)",
        ref="k.partner_customer_ref",
        members="member_links k JOIN member_directory d ON d.member_id = k.member_id AND k.partner_id = :p",
        at_partner="AND e.partner_id = :p",
        joined="k.linked_at",
    )
)


def _require_reader(principal: Principal) -> int | None:
    """The calling partner's id, or None for an admin; Forbidden for anyone else."""
    if principal.partner_id is not None:
        return principal.require_partner("members:read")
    principal.require_admin("admin:partners")
    return None


async def members_to_reengage(
    db: Database,
    principal: Principal,
    *,
    inactive_for: timedelta,
    min_points: int | None,
    first: int | None,
    after: str | None,
) -> Page[MemberToReengage]:
    partner_id = _require_reader(principal)
    v = Validator()
    v.check(inactive_for > timedelta(0), "inactiveFor", UserErrorCode.INVALID, "inactiveFor must be positive")
    v.check(
        (min_points or 0) >= 0, "minPoints", UserErrorCode.INVALID_AMOUNT, "minPoints must not be negative"
    )
    v.raise_if_any()
    size = page_size(first)
    position = decode_cursor(after)
    now = clock.now()
    query = ALL_MEMBERS if partner_id is None else PARTNER_MEMBERS
    async with sql.connection(db) as conn:
        rows = await query.fetch(
            conn,
            p=partner_id,
            now=now,
            since=now - inactive_for,
            min_points=min_points or 0,
            after=position,
            limit=size + 1,
        )
    items = [
        MemberToReengage(
            member_id=r["member_id"],
            member_number=r["member_number"],
            email=r["email"],
            partner_customer_ref=r["partner_customer_ref"],
            available_points=int(r["available"]),
            last_activity_at=r["last_activity_at"],
        )
        for r in rows
    ]
    return make_page(items, size, lambda m: m.member_id)
