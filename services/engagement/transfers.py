"""Gifts and charity: a member gives points to another member (transferPoints) or to a charity
(donatePoints). The booking is the ledger's (services/ledger/transfers.py); the rules are here.

Rules, stated (docs/decisions.md, "Transfers and donations"):
- only the member themself, with their own token (scope `member`): no spend code is asked, as
  the member is the one acting (a partner's till is what the code guards against);
- points: 1 to MAX_POINTS, at most what the sender has available (held and pending points do not
  count: INSUFFICIENT_POINTS), never while the sender owes points from a refund (MEMBER_HAS_DEBT);
- a transfer: not to oneself (INVALID toMemberNumber); the receiver must be a member who is not
  erased (MEMBER_NOT_FOUND: the same answer for an unknown number, so an erased member's number
  says nothing); at most TRANSFER_DAILY_LIMIT_POINTS given per UTC day and
  TRANSFER_MONTHLY_LIMIT_POINTS per calendar month, counted under the sender's wallet lock so
  concurrent transfers cannot pass them (TRANSFER_LIMIT_REACHED says what is left); a message of
  up to 200 characters travels with it (the receiver's mail quotes it);
- a donation: to a partner of kind CHARITY (CHARITY_NOT_FOUND otherwise); it is a redemption at
  the charity, settled at the charity's redeem price, on its statement like any redemption;
- exactly once per idempotencyKey (the member's app client and the key name the request).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.ledger import service as ledger
from services.ledger.service import Outcome
from services.members import service as members
from services.partners import service as partners
from services.partners.models import PartnerKind
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator
from shared.settings import get_settings
from shared.sql import DbConnection, Sql

MAX_POINTS = 1_000_000_000
MAX_MESSAGE = 200

RECEIVER = Sql("SELECT id FROM members WHERE member_number = :n AND erased_at IS NULL")
GIVEN = Sql(
    "SELECT COALESCE(SUM(points) FILTER (WHERE created_at >= :day), 0) AS day,"
    " COALESCE(SUM(points), 0) AS month FROM transfers"
    " WHERE sender_member_id = :m AND created_at >= :month"
)
RECORD = Sql(
    "INSERT INTO transfers (sender_member_id, receiver_member_id, points, message, out_entry_id,"
    " in_entry_id, created_at) VALUES (:s, :r, :points, :message, :out, :in, :now) RETURNING id"
)


@dataclass(frozen=True)
class Allowance:
    day: int  # points the sender may still give today
    month: int

    @property
    def left(self) -> int:
        return min(self.day, self.month)


def member_scope(principal: Principal) -> str:
    """The idempotency scope of a member's own request: every member of an app shares its client
    id, so keys are the member's own (as redeemReward's are)."""
    return f"{principal.client_id}#member:{principal.require_member()}"


def _check_points(v: Validator, points: int) -> None:
    v.check(
        0 < points <= MAX_POINTS,
        "points",
        UserErrorCode.INVALID_AMOUNT,
        f"points must be 1 to {MAX_POINTS:,}",
    )


async def allowance(conn: DbConnection, member_id: int, now: datetime) -> Allowance:
    """What the member may still give today and this month (exact under their wallet lock)."""
    settings = get_settings()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    row = await GIVEN.fetchrow(conn, m=member_id, day=day, month=day.replace(day=1))
    assert row is not None
    return Allowance(
        day=max(settings.transfer_daily_limit_points - int(row["day"]), 0),
        month=max(settings.transfer_monthly_limit_points - int(row["month"]), 0),
    )


async def transfer_points(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    to_member_number: str,
    points: int,
    message: str | None = None,
) -> Outcome:
    """Gives `points` of the calling member's available points to another member. The result:
    transfer_id, points, transaction_id (the sender's entry), receiver_transaction_id."""
    sender_id = principal.require_member()
    v = Validator()
    ledger.check_common(v, idempotency_key, None)
    members.check_member_number(v, to_member_number, "toMemberNumber")
    _check_points(v, points)
    if message is not None:
        v.text(message, "message", max_length=MAX_MESSAGE, required=False)
    v.raise_if_any()
    text = message.strip() if message and message.strip() else None
    request = {"to": to_member_number, "points": points, "message": text}

    async def work(conn: DbConnection) -> dict[str, Any]:
        now = clock.now()
        receiver_id = await RECEIVER.fetchval(conn, n=to_member_number)
        if receiver_id is None:
            raise DomainError.single(
                UserErrorCode.MEMBER_NOT_FOUND, "no member has this number", "toMemberNumber"
            )
        if receiver_id == sender_id:
            raise DomainError.single(
                UserErrorCode.INVALID, "you cannot give points to yourself", "toMemberNumber"
            )
        await ledger.lock_pair(conn, sender_id, receiver_id)
        left = await allowance(conn, sender_id, now)
        if points > left.left:
            period = "today" if left.day <= left.month else "this month"
            raise DomainError.single(
                UserErrorCode.TRANSFER_LIMIT_REACHED,
                f"you may give {left.left} more points {period}",
                "points",
            )
        booked = await ledger.book_transfer(
            db,
            conn,
            sender_id=sender_id,
            receiver_id=receiver_id,
            points=points,
            now=now,
            reference=f"transfer:{idempotency_key}"[:200],
            message=text,
        )
        transfer_id = await RECORD.fetchval(
            conn,
            s=sender_id,
            r=receiver_id,
            points=points,
            message=text,
            out=booked.out_entry_id,
            **{"in": booked.in_entry_id},
            now=now,
        )
        return {
            "transfer_id": transfer_id,
            "points": points,
            "transaction_id": booked.out_entry_id,
            "receiver_transaction_id": booked.in_entry_id,
            "occurred_at": now.isoformat(),
        }

    return Outcome.of(
        await ledger.run_idempotent(
            db,
            client_id=member_scope(principal),
            key=idempotency_key,
            operation="transferPoints",
            request=request,
            work=work,
        )
    )


async def donate_points(
    db: Database, principal: Principal, *, idempotency_key: str, charity_id: int | None, points: int
) -> Outcome:
    """Gives `points` of the calling member's available points to a charity: a redemption at it.
    The result: redemption_id, transaction_id, points, value (what the charity is owed for them)."""
    member_id = principal.require_member()
    v = Validator()
    ledger.check_common(v, idempotency_key, None)
    _check_points(v, points)
    v.raise_if_any()
    request = {"charity": charity_id, "points": points}

    async def work(conn: DbConnection) -> dict[str, Any]:
        charity = await partners.get_partner(conn, charity_id) if charity_id is not None else None
        if charity is None or charity.kind != PartnerKind.CHARITY:
            raise DomainError.single(UserErrorCode.CHARITY_NOT_FOUND, "no charity has this id", "charityId")
        return await ledger.book_donation(
            db,
            conn,
            member_id=member_id,
            charity_id=charity.id,
            points=points,
            order_id=f"donation:{idempotency_key}"[:200],
            now=clock.now(),
        )

    return Outcome.of(
        await ledger.run_idempotent(
            db,
            client_id=member_scope(principal),
            key=idempotency_key,
            operation="donatePoints",
            request=request,
            work=work,
        )
    )
