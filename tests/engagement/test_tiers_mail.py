"""Tiers meet member mail: the earn that crosses a threshold writes `tier.changed` (UP) in its own
transaction, and the mail jobs turn that real event into a "Welcome to <tier>" mail received by a
real SMTP server; a downgrade's event owes none."""

from __future__ import annotations

import pytest

from shared.database import Database
from tests.engagement.tiers_helpers import make_tier, no_tiers, tier_events  # noqa: F401
from tests.factories import earn, make_partner
from tests.notifications.conftest import (
    Inbox,
    member_with_mail,
    notifications_of,
    run_mail_jobs,
    settle,
    smtp,  # noqa: F401
)

pytestmark = pytest.mark.usefixtures("no_tiers")


async def test_an_earn_crossing_a_tier_mails_the_member(db: Database, smtp: Inbox) -> None:  # noqa: F811
    await make_tier(db, "Silver", 100, "2")
    cafe = await make_partner(db, earn_rate="1")
    member, address = await member_with_mail(db, cafe)
    assert (await earn(db, cafe, member.member_number, "60.00")).errors == []
    await run_mail_jobs(db)
    assert await notifications_of(db, member.id) == []  # no tier crossed, no mail
    assert (await earn(db, cafe, member.member_number, "50.00")).errors == []  # 110: Silver
    [changed] = await tier_events(db, member.id)
    assert (changed["toTier"], changed["direction"], changed["qualifyingPoints"]) == ("Silver", "UP", 110)
    await run_mail_jobs(db)
    [mail] = await settle(smtp, address, 1)
    assert mail["Subject"] == "Welcome to Silver!"
    [row] = await notifications_of(db, member.id)
    assert (row["kind"], row["status"]) == ("TIER_UP", "SENT")
