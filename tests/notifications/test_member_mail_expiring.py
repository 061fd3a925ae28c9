"""The expiring-points notice: a scan, not an event. Once per member and expiry date (a lot
batch) across any number of scans, again for a new batch entering the 30-day window; opted-out
members get none; the worker's job runs the scan at most once an hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.ledger import policy
from services.members import account
from services.members.mail_preferences import MailTopic
from services.notifications import expiring, scheduled
from shared import clock, sql
from shared.access import MEMBER_SCOPE, Principal
from shared.database import Database
from tests.factories import SeededPartner, earn, make_partner
from tests.notifications.conftest import (
    Inbox,
    member_with_mail,
    notifications_of,
    parts,
    scan_and_send,
    settle,
)


async def earn_expiring_in(
    db: Database, partner: SeededPartner, number: str, points: int, days: int
) -> datetime:
    """Earns `points` dated so that they expire `days` from now (the expiry policy's months
    earlier); returns when they expire."""
    async with sql.connection(db) as conn:
        months = (await policy.current(db, conn)).months
    earned = clock.add_months(clock.now(), -months) + timedelta(days=days)
    outcome = await earn(db, partner, number, str(points), occurred_at=earned)
    assert not outcome.errors and outcome.result is not None, outcome.errors
    return clock.add_months(earned, months)


async def test_the_notice_goes_once_per_batch_and_again_for_a_new_batch(db: Database, smtp: Inbox) -> None:
    partner = await make_partner(db)
    member, address = await member_with_mail(db, partner, language="fr")
    soon = await earn_expiring_in(db, partner, member.member_number, 300, 20)
    await earn_expiring_in(db, partner, member.member_number, 200, 20)  # the same batch (same day)
    later = await earn_expiring_in(db, partner, member.member_number, 100, 50)  # outside the window
    now = clock.now()

    assert await scan_and_send(db, now) >= 1
    [message] = await settle(smtp, address, 1)
    day = soon.date()
    months = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ]
    assert message["Subject"] == f"500 points expirent le {day.day} {months[day.month - 1]} {day.year}"
    text, html = parts(message)
    assert "500 de vos points expirent" in text and "<b>" in html

    # The next scans (a second worker at once, tomorrow's) know the batch was noticed.
    await scan_and_send(db, now)
    await scan_and_send(db, now + timedelta(days=1))
    assert len(smtp.to(address)) == 1

    # 25 days on, the first batch is gone and the second has come into the window: a new notice.
    await scan_and_send(db, now + timedelta(days=25))
    [_, second] = await settle(smtp, address, 2)
    assert second["Subject"].startswith("100 points expirent le")
    rows = await notifications_of(db, member.id)
    assert [(r["kind"], r["expires_on"], r["status"]) for r in rows] == [
        ("POINTS_EXPIRING", soon.date(), "SENT"),
        ("POINTS_EXPIRING", later.date(), "SENT"),
    ]


async def test_an_opted_out_member_gets_no_notice_and_is_not_scanned_again(db: Database, smtp: Inbox) -> None:
    partner = await make_partner(db)
    member, address = await member_with_mail(db, partner)
    principal = Principal(client_id="app", scopes=frozenset({MEMBER_SCOPE}), member_id=member.id)
    await account.update_settings(
        db, principal, require_code_to_spend=None, mail={MailTopic.EXPIRING_POINTS: False}
    )
    await earn_expiring_in(db, partner, member.member_number, 40, 10)
    await scan_and_send(db, clock.now())
    await scan_and_send(db, clock.now())
    assert smtp.to(address) == []
    assert [(r["status"], r["skip_reason"]) for r in await notifications_of(db, member.id)] == [
        ("SKIPPED", "OPTED_OUT")
    ]


async def test_the_worker_runs_the_scan_at_most_once_an_hour(db: Database) -> None:
    moment = clock.now() + timedelta(days=3650)  # past any other test's claim
    try:
        assert await expiring.claim_scan(db, moment)
        assert not await expiring.claim_scan(db, moment + timedelta(minutes=10))
        assert (await scheduled.scan_expiring_points(db, moment + timedelta(minutes=59), 100)).rows == 0
        assert await expiring.claim_scan(db, moment + expiring.SCAN_INTERVAL)
    finally:
        async with sql.connection(db) as conn:
            await conn.execute("DELETE FROM notification_scans WHERE name = $1", expiring.SCAN_NAME)


def test_the_window_covers_whole_days() -> None:
    now = datetime(2027, 3, 1, 15, 30, tzinfo=UTC)
    assert expiring.window_end(now) == datetime(2027, 4, 1, tzinfo=UTC)
