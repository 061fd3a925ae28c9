"""Member mail tests: a real SMTP server (aiosmtpd, `smtp`), members with an email and a language,
and the mail jobs run as the worker runs them."""

from __future__ import annotations

import asyncio
from datetime import datetime
from email.message import EmailMessage

from services.members import service as members
from services.notifications import delivery, dispatch, expiring
from shared import clock, sql
from shared.database import Database
from shared.outbox import EventType, record_event
from tests.factories import SeededPartner, unique
from tests.members.conftest import Inbox, smtp

__all__ = ["Inbox", "smtp"]


async def member_with_mail(
    db: Database, partner: SeededPartner, *, language: str | None = None, email: bool = True
) -> tuple[members.MemberView, str | None]:
    address = f"{unique('m')}@example.com" if email else None
    view = await members.enroll_member(
        db, partner.principal, partner_customer_ref=unique("cust"), email=address, language=language
    )
    return view, address


async def event(db: Database, type: EventType, data: dict, member_id: int, partner_ids=()) -> str:
    """An event as its writer records it: in a transaction of its own."""
    async with sql.connection(db) as conn, conn.transaction():
        return str(await record_event(conn, type, data, member_id=member_id, partner_ids=partner_ids))


async def dispatch_all(db: Database, now: datetime | None = None) -> int:
    """The `mail-events` job until the outbox has nothing left for it; returns events taken."""
    taken = 0
    while (done := await dispatch.dispatch_events(db, now or clock.now(), 500)).events:
        taken += done.events
    return taken


async def deliver_all(db: Database, now: datetime | None = None) -> None:
    while (await delivery.deliver_due(db, now or clock.now())).handled:
        pass


async def run_mail_jobs(db: Database, now: datetime | None = None) -> None:
    await dispatch_all(db, now)
    await deliver_all(db, now)


async def scan_and_send(db: Database, now: datetime) -> int:
    found = await expiring.scan(db, now, 500)
    await deliver_all(db, now)
    return found


async def notifications_of(db: Database, member_id: int) -> list[dict]:
    async with sql.connection(db) as conn:
        rows = await conn.fetch(
            "SELECT kind, event_id, expires_on, status, skip_reason, attempts, sent_at, data::text AS data"
            " FROM member_notifications WHERE member_id = $1 ORDER BY id",
            member_id,
        )
    return [dict(r) for r in rows]


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML parts of a multipart/alternative mail (fails on anything else)."""
    assert message.get_content_type() == "multipart/alternative", message.get_content_type()
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


async def settle(inbox: Inbox, address: str, count: int) -> list[EmailMessage]:
    """The inbox's messages to `address` (aiosmtpd has them once the send returned)."""
    for _ in range(20):
        if len(inbox.to(address)) >= count:
            break
        await asyncio.sleep(0.01)
    return inbox.to(address)
