"""The members service's events (docs/events.md): member.enrolled, member.linked, member.unlinked.

A link is what tenancy hangs on (an `enrollments` row), so the events follow the row:
- member.linked whenever a link comes into being, by enrolment (`how` ENROLLED) or by an earn
  that gives points at a partner the member is not linked to (CARD_PRESENTED: the card presented
  at the till, a first time or again after an unlink);
- member.enrolled whenever a partner enrols the member under its own customer ref: a new member,
  an existing member new to the partner (with member.linked ENROLLED, in that order), or a member
  the partner knew from the till only (no new link: member.enrolled alone). Enrolling the same
  ref again answers the same member and writes nothing;
- member.unlinked when the member removes the link (`unlinkPartner`).

Each is written in the transaction (or the one statement) that writes the link, so an event
exists exactly when its link change committed. `partner_ids` is the partner of the link.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.members.models import LinkHow
from shared import clock
from shared.ids import to_global_id
from shared.outbox import Event, EventType, encode, record_event, record_event_in_session, record_events
from shared.sql import DbConnection, Sql


def linked(member_number: str, partner_id: int, how: LinkHow) -> dict[str, Any]:
    return {"memberNumber": member_number, "partnerId": to_global_id("Partner", partner_id), "how": str(how)}


def enrolled(member_number: str, partner_id: int, ref: str) -> dict[str, Any]:
    return {
        "memberNumber": member_number,
        "partnerId": to_global_id("Partner", partner_id),
        "partnerCustomerRef": ref,
    }


async def record_enrolment(
    session: AsyncSession, member_id: int, member_number: str, partner_id: int, ref: str, *, new_link: bool
) -> None:
    """In the enrolment's session transaction: member.enrolled, then member.linked (ENROLLED) when
    the enrolment made the link."""
    await record_event_in_session(
        session,
        EventType.MEMBER_ENROLLED,
        enrolled(member_number, partner_id, ref),
        member_id=member_id,
        partner_ids=[partner_id],
    )
    if new_link:
        await record_event_in_session(
            session,
            EventType.MEMBER_LINKED,
            linked(member_number, partner_id, LinkHow.ENROLLED),
            member_id=member_id,
            partner_ids=[partner_id],
        )


# The link made at the till and its member.linked event in ONE statement: it runs after the
# one-statement earn, in autocommit, and must not leave a link without its event (or the reverse).
LINK_AT_TILL = Sql(
    "WITH l AS (INSERT INTO enrollments (member_id, partner_id) VALUES (:m, :p)"
    "  ON CONFLICT (partner_id, member_id) DO NOTHING RETURNING member_id)"
    " INSERT INTO outbox_events (event_id, type, version, occurred_at, member_id, partner_ids, data)"
    " SELECT CAST(:event_id AS uuid), 'member.linked', 1, CAST(:now AS timestamptz), member_id,"
    " ARRAY[CAST(:p AS bigint)], CAST(:data AS jsonb) FROM l RETURNING id"
)


async def link_at_till(conn: DbConnection, member_id: int, member_number: str, partner_id: int) -> bool:
    """Links the member (presenting the card is consent) with its event; False when it was
    linked already (nothing written)."""
    data = encode(linked(member_number, partner_id, LinkHow.CARD_PRESENTED))
    return (
        await LINK_AT_TILL.fetchval(
            conn, m=member_id, p=partner_id, event_id=uuid.uuid4(), data=data, now=clock.now()
        )
        is not None
    )


def linked_at_till_event(member_id: int, member_number: str, partner_id: int) -> Event:
    return Event(
        EventType.MEMBER_LINKED,
        linked(member_number, partner_id, LinkHow.CARD_PRESENTED),
        member_id=member_id,
        partner_ids=(partner_id,),
    )


async def record_linked_at_till(conn: DbConnection, newly: dict[int, str], partner_id: int) -> None:
    """member.linked (CARD_PRESENTED) for a bulk earn's new links, in one statement."""
    await record_events(conn, [linked_at_till_event(m, newly[m], partner_id) for m in sorted(newly)])


async def record_unlinked(conn: DbConnection, member_id: int, member_number: str, partner_id: int) -> None:
    await record_event(
        conn,
        EventType.MEMBER_UNLINKED,
        {"memberNumber": member_number, "partnerId": to_global_id("Partner", partner_id)},
        member_id=member_id,
        partner_ids=[partner_id],
    )
