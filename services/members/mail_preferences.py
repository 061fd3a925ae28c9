"""What a member wants of our mail: their language, and which kinds of mail they opted out of.

The preferences live with the member (members own them; `services/notifications`, near the top of
the order of services, reads them through `recipients` when it decides and sends a mail). Every
kind is opted in by default; a member opts out per topic with `updateMemberSettings`. Erasure
clears the language with the rest of the personal data (`erasure.ERASE`), and an erased member,
or one without an email, is never a recipient.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from shared.sql import DbConnection, Sql

MAX_LANGUAGE = 35  # BCP 47 tags in practice stay far below this
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


class MailTopic(enum.StrEnum):
    """The kinds of member mail a member can opt out of, each one column of `members`."""

    TIER_CHANGES = "TIER_CHANGES"
    EXPIRING_POINTS = "EXPIRING_POINTS"
    REWARD_VOUCHERS = "REWARD_VOUCHERS"
    TRANSFERS_RECEIVED = "TRANSFERS_RECEIVED"


COLUMNS: dict[MailTopic, str] = {
    MailTopic.TIER_CHANGES: "mail_tier_changes",
    MailTopic.EXPIRING_POINTS: "mail_expiring_points",
    MailTopic.REWARD_VOUCHERS: "mail_reward_vouchers",
    MailTopic.TRANSFERS_RECEIVED: "mail_transfers_received",
}


def normalize_language(tag: str) -> str:
    """A language tag in its usual case ("fr", "nl-BE"), or ValueError saying what is wrong."""
    tag = tag.strip()
    if len(tag) > MAX_LANGUAGE or not _LANGUAGE_TAG.match(tag):
        raise ValueError("language must be a BCP 47 language tag such as en, fr or nl-BE")
    primary, *rest = tag.split("-")
    return "-".join([primary.lower(), *(r.upper() if len(r) == 2 else r for r in rest)])


@dataclass(frozen=True)
class MailRecipient:
    """A member as mail sees them. `email` is None for a member without one and for an erased
    member (erasure drops it): neither gets mail."""

    member_id: int
    member_number: str
    email: str | None
    language: str | None
    opted_in: frozenset[MailTopic]
    erased: bool = False


RECIPIENTS = Sql(
    "SELECT id, member_number, CASE WHEN erased_at IS NULL THEN email END AS email, language,"
    " erased_at IS NOT NULL AS erased,"
    f" {', '.join(COLUMNS.values())}"
    " FROM members WHERE id = ANY(CAST(:ids AS bigint[]))"
)


async def recipients(conn: DbConnection, member_ids: list[int]) -> dict[int, MailRecipient]:
    """The members behind `member_ids` as mail recipients, one statement; unknown ids are left out."""
    rows = await RECIPIENTS.fetch(conn, ids=member_ids)
    return {
        r["id"]: MailRecipient(
            member_id=r["id"],
            member_number=r["member_number"],
            email=r["email"],
            language=r["language"],
            opted_in=frozenset(t for t, column in COLUMNS.items() if r[column]),
            erased=r["erased"],
        )
        for r in rows
    }
