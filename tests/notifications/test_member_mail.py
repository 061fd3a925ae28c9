"""Member mail from outbox events, received by a real SMTP server: tier up, reward voucher,
transfer received — multipart text + HTML, in the member's language; opt-outs, erased members and
members without email get none; each event is recorded once however many consumers run."""

from __future__ import annotations

import asyncio

from services.ledger import erasure
from services.members import account
from services.members.mail_preferences import MailTopic
from services.notifications import delivery, dispatch
from shared import clock, sql
from shared.access import MEMBER_SCOPE, Principal
from shared.database import Database
from shared.outbox import EventType
from tests.factories import ADMIN, make_partner
from tests.notifications.conftest import (
    Inbox,
    deliver_all,
    dispatch_all,
    event,
    member_with_mail,
    notifications_of,
    parts,
    run_mail_jobs,
    settle,
)


def tier_changed(number: str, direction: str = "UP", to: str = "Gold") -> dict:
    return {
        "memberNumber": number,
        "fromTier": "Silver",
        "toTier": to,
        "direction": direction,
        "qualifyingPoints": 12500,
    }


async def test_tier_up_mail_is_multipart_and_in_the_members_language(db: Database, smtp: Inbox) -> None:
    partner = await make_partner(db)
    french, fr_mail = await member_with_mail(db, partner, language="fr-BE")
    english, en_mail = await member_with_mail(db, partner)
    await event(db, EventType.TIER_CHANGED, tier_changed(french.member_number), french.id, [partner.id])
    await event(db, EventType.TIER_CHANGED, tier_changed(english.member_number), english.id, [partner.id])
    await event(db, EventType.TIER_CHANGED, tier_changed(french.member_number, "DOWN", "Silver"), french.id)
    await run_mail_jobs(db)

    [fr] = await settle(smtp, fr_mail, 1)
    assert fr["Subject"] == "Bienvenue au niveau Gold !"
    text, html = parts(fr)
    assert "12\u202f500 points qualifiants" in text and french.member_number in text
    assert '<html lang="fr">' in html and "<b>Gold</b>" in html
    [en] = await settle(smtp, en_mail, 1)
    assert en["Subject"] == "Welcome to Gold!"
    assert "12,500 qualifying points" in parts(en)[0]
    # A tier going down owes no mail: one notification for the French member, sent.
    [row] = await notifications_of(db, french.id)
    assert (row["kind"], row["status"], row["attempts"]) == ("TIER_UP", "SENT", 1)
    assert row["sent_at"] is not None


async def test_voucher_mail_carries_the_code_and_only_a_voucher_owes_one(db: Database, smtp: Inbox) -> None:
    partner = await make_partner(db)
    member, address = await member_with_mail(db, partner, language="en")
    redeemed = {
        "memberNumber": member.member_number,
        "partnerId": "UGFydG5lcjox",
        "rewardId": "UmV3YXJkOjE=",
        "rewardName": "Croissant & coffee",
        "points": 1200,
        "transactionId": "VHJhbnNhY3Rpb246MQ==",
        "voucherCode": "VCH-7Q2K-9XPA",
    }
    await event(db, EventType.REWARD_REDEEMED, redeemed, member.id, [partner.id])
    await event(db, EventType.REWARD_REDEEMED, {**redeemed, "voucherCode": None}, member.id, [partner.id])
    await run_mail_jobs(db)
    [message] = await settle(smtp, address, 1)
    assert message["Subject"] == "Your voucher for Croissant & coffee"
    text, html = parts(message)
    assert "VCH-7Q2K-9XPA" in text and "1,200 points" in text
    assert "Croissant &amp; coffee" in html, "values are escaped in the HTML part"
    assert [r["kind"] for r in await notifications_of(db, member.id)] == ["REWARD_VOUCHER"]


async def test_transfer_received_goes_to_the_receiver_in_dutch(db: Database, smtp: Inbox) -> None:
    partner = await make_partner(db)
    sender, sender_mail = await member_with_mail(db, partner)
    receiver, receiver_mail = await member_with_mail(db, partner, language="nl")
    data = {
        "transferId": "VHJhbnNmZXI6MQ==",
        "fromMemberNumber": sender.member_number,
        "toMemberNumber": receiver.member_number,
        "points": 300,
        "message": "Voor de <b>taart</b>",
    }
    await event(db, EventType.POINTS_TRANSFERRED, data, receiver.id, [partner.id])
    await run_mail_jobs(db)
    [message] = await settle(smtp, receiver_mail, 1)
    assert message["Subject"] == "U hebt 300 punten ontvangen"
    text, html = parts(message)
    assert "Voor de <b>taart</b>" in text and sender.member_number[-4:] in text
    assert sender.member_number not in text, "another member's number shows only its last digits"
    assert "Voor de &lt;b&gt;taart&lt;/b&gt;" in html
    assert smtp.to(sender_mail) == []


async def test_a_member_who_opted_out_of_a_kind_gets_none_of_it_but_the_others(
    db: Database, smtp: Inbox
) -> None:
    partner = await make_partner(db)
    member, address = await member_with_mail(db, partner)
    principal = Principal(client_id="app", scopes=frozenset({MEMBER_SCOPE}), member_id=member.id)
    settings = await account.update_settings(
        db, principal, require_code_to_spend=None, mail={MailTopic.TIER_CHANGES: False}
    )
    assert MailTopic.TIER_CHANGES not in settings.mail and MailTopic.TRANSFERS_RECEIVED in settings.mail
    await event(db, EventType.TIER_CHANGED, tier_changed(member.member_number), member.id)
    transfer = {"transferId": "x", "fromMemberNumber": "", "toMemberNumber": member.member_number}
    await event(db, EventType.POINTS_TRANSFERRED, {**transfer, "points": 5, "message": None}, member.id)
    await run_mail_jobs(db)
    [message] = await settle(smtp, address, 1)
    assert message["Subject"] == "You received 5 points"
    rows = await notifications_of(db, member.id)
    assert [(r["kind"], r["status"], r["skip_reason"]) for r in rows] == [
        ("TIER_UP", "SKIPPED", "OPTED_OUT"),
        ("TRANSFER_RECEIVED", "SENT", None),
    ]


async def test_erased_members_and_members_without_email_get_none(db: Database, smtp: Inbox) -> None:
    partner = await make_partner(db)
    erased, erased_mail = await member_with_mail(db, partner)
    no_email, _ = await member_with_mail(db, partner, email=False)
    late, late_mail = await member_with_mail(db, partner)
    await erasure.erase_member(db, ADMIN, erased.member_number)
    for member in (erased, no_email, late):
        await event(db, EventType.TIER_CHANGED, tier_changed(member.member_number), member.id)
    await dispatch_all(db)
    # `late` is erased after its mail was decided and before it went: it goes to nobody.
    await erasure.erase_member(db, ADMIN, late.member_number)
    await deliver_all(db)
    assert smtp.to(erased_mail) == [] and smtp.to(late_mail) == []
    assert [(r["status"], r["skip_reason"]) for r in await notifications_of(db, erased.id)] == [
        ("SKIPPED", "ERASED")
    ]
    assert [(r["status"], r["skip_reason"]) for r in await notifications_of(db, no_email.id)] == [
        ("SKIPPED", "NO_EMAIL")
    ]
    assert [(r["status"], r["skip_reason"]) for r in await notifications_of(db, late.id)] == [
        ("SKIPPED", "ERASED")
    ]


async def test_each_event_is_recorded_once_however_many_consumers_run(db: Database, smtp: Inbox) -> None:
    partner = await make_partner(db)
    people = [await member_with_mail(db, partner) for _ in range(5)]
    event_ids = []
    for member, _ in people:
        for tier in ("Silver", "Gold", "Platinum"):
            event_ids.append(
                await event(
                    db, EventType.TIER_CHANGED, tier_changed(member.member_number, to=tier), member.id
                )
            )
    # Four consumers at once, small batches, then one more pass: every event decided exactly once.
    await asyncio.gather(*(_consume(db) for _ in range(4)))
    await dispatch_all(db)
    async with sql.connection(db) as conn:
        recorded = await conn.fetchval(
            "SELECT count(*) FROM member_notifications WHERE event_id = ANY($1::uuid[])", event_ids
        )
        untaken = await conn.fetchval(
            "SELECT count(*) FROM outbox_events"
            " WHERE event_id = ANY($1::uuid[]) AND mail_dispatched_at IS NULL",
            event_ids,
        )
    assert (recorded, untaken) == (15, 0)
    # Two senders at once: each mail goes once.
    await asyncio.gather(deliver_all(db), deliver_all(db))
    for _member, address in people:
        assert sorted(m["Subject"] for m in await settle(smtp, address, 3)) == [
            "Welcome to Gold!",
            "Welcome to Platinum!",
            "Welcome to Silver!",
        ]


async def _consume(db: Database) -> None:
    """A consumer taking small batches, so that several share the work."""
    done = await dispatch.dispatch_events(db, clock.now(), 4)
    if done.events:
        await _consume(db)


async def test_a_refused_mail_is_retried_later_and_then_sent(db: Database, smtp: Inbox, monkeypatch) -> None:
    from shared.settings import get_settings
    from tests.e2e.conftest import free_port

    partner = await make_partner(db)
    member, address = await member_with_mail(db, partner)
    await event(db, EventType.TIER_CHANGED, tier_changed(member.member_number), member.id)
    await dispatch_all(db)
    working = get_settings().smtp_url
    monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{free_port()}")  # nobody listens there
    get_settings.cache_clear()
    now = clock.now()
    await deliver_all(db, now)
    [row] = await notifications_of(db, member.id)
    assert (row["status"], row["attempts"]) == ("PENDING", 1)
    monkeypatch.setenv("SMTP_URL", working)
    get_settings.cache_clear()
    await deliver_all(db, now)  # not due again yet
    assert smtp.to(address) == []
    await deliver_all(db, now + delivery.retry_delay(1))
    assert len(await settle(smtp, address, 1)) == 1
    [row] = await notifications_of(db, member.id)
    assert (row["status"], row["attempts"]) == ("SENT", 2)


def test_every_kind_renders_in_every_language() -> None:
    from services.notifications.messages import MESSAGES
    from services.notifications.models import NotificationKind
    from services.notifications.render import render

    samples = {
        NotificationKind.TIER_UP: {"toTier": "Gold", "qualifyingPoints": 1},
        NotificationKind.REWARD_VOUCHER: {"rewardName": "R", "voucherCode": "C", "points": 1},
        NotificationKind.TRANSFER_RECEIVED: {"points": 1, "fromMemberNumber": "123456789012", "message": "m"},
        NotificationKind.POINTS_EXPIRING: {"points": 1, "expiresOn": "2027-01-04"},
    }
    for language in MESSAGES:
        assert set(MESSAGES[language]) == set(NotificationKind), language
        for kind, data in samples.items():
            mail = render(kind, data, to="a@example.com", member_number="1", tag=language)
            assert "$" not in mail.subject + mail.text + mail.html, (language, kind)
    assert (
        render(
            NotificationKind.TIER_UP,
            samples[NotificationKind.TIER_UP],
            to="a@x.org",
            member_number="1",
            tag="de",
        ).subject
        == "Welcome to Gold!"
    ), "a language without templates falls back to English"
