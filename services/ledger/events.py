"""The ledger's events (docs/events.md): the payloads of points.earned, points.redeemed,
points.reversed, points.expired and reward.redeemed, built in one place so that every path that
moves points (the one-statement earn, the general path, bulk, the worker) says the same thing.

Each is written in the transaction of the move it reports (`shared.outbox`), after the last check
that can refuse the move: a refusal stored under an idempotency key commits, and must commit
without an event. `member_id` is the member the event is about (the ordering key); `partner_ids`
the partners that may hear of it: the partner the move happened at (the issuers, for an expiry).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.members import service as members
from shared.ids import to_global_id
from shared.outbox import Event, EventType, record_event, record_events
from shared.sql import DbConnection


class EarnStatus(StrEnum):
    """points.earned `status`: PENDING inside the partner's return window, AVAILABLE once past it
    (at the earn itself for a partner without one, else when the worker activates the lots)."""

    PENDING = "PENDING"
    AVAILABLE = "AVAILABLE"


class EarnSource(StrEnum):
    """points.earned `source`: what earned the points. The ledger books purchases; other sources
    (activities, referrals, promotions) are named by the services that book them."""

    PURCHASE = "PURCHASE"
    ACTIVITY = "ACTIVITY"
    REFERRAL = "REFERRAL"
    PROMOTION = "PROMOTION"


class ReversalKind(StrEnum):
    """points.reversed `kind`. A VOID (a released hold) moves no points and writes no event."""

    REFUND = "REFUND"  # reversePurchase: points of a refunded purchase taken back
    CANCELLATION = "CANCELLATION"  # cancelRedemption: the redemption undone, its points back


def partner_gid(partner_id: int) -> str:
    return to_global_id("Partner", partner_id)


def transaction_gid(entry_id: int) -> str:
    return to_global_id("Transaction", entry_id)


def source_of(entry_kind: str) -> str:
    """points.earned `source` of an earn entry: the ledger's EARN is a purchase; an entry of
    another kind that opens lots (an activity, a referral) is named by its kind."""
    return EarnSource.PURCHASE if entry_kind == "EARN" else entry_kind


def earn_status(available_at: datetime, now: datetime) -> EarnStatus:
    """As the earn books the lot: available at once when its return window is already over."""
    return EarnStatus.AVAILABLE if available_at <= now else EarnStatus.PENDING


def points_earned(
    *,
    member_number: str,
    partner_id: int,
    entry_id: int | None,
    points: int,
    status: EarnStatus,
    order_id: str | None,
    source: str = EarnSource.PURCHASE,
    coalition_points: int = 0,
) -> dict[str, Any]:
    """`entry_id` None leaves `transactionId` out: the one-statement earn adds it in SQL, from the
    entry id the statement itself draws (`earn_booking.EARN_TEMPLATE`)."""
    data: dict[str, Any] = {
        "memberNumber": member_number,
        "partnerId": partner_gid(partner_id),
        "points": points,
        "status": str(status),
        "orderId": order_id,
        "source": str(source),
        "coalitionPoints": coalition_points,
    }
    if entry_id is not None:
        data["transactionId"] = transaction_gid(entry_id)
    return data


def points_redeemed(
    *, member_number: str, partner_id: int, entry_id: int, redemption_id: int, points: int, order_id: str
) -> dict[str, Any]:
    return {
        "memberNumber": member_number,
        "partnerId": partner_gid(partner_id),
        "transactionId": transaction_gid(entry_id),
        "redemptionId": to_global_id("Redemption", redemption_id),
        "points": points,
        "orderId": order_id,
    }


def points_reversed(
    *,
    member_number: str,
    partner_id: int,
    entry_id: int,
    points: int,
    kind: ReversalKind,
    order_id: str | None,
) -> dict[str, Any]:
    """`points` as a positive number: what the refund took back from the member, or (for a
    cancellation) what the cancelled redemption gave back to them."""
    return {
        "memberNumber": member_number,
        "partnerId": partner_gid(partner_id),
        "transactionId": transaction_gid(entry_id),
        "points": points,
        "kind": str(kind),
        "orderId": order_id,
    }


async def record_reversed(
    conn: DbConnection,
    member_id: int,
    partner_id: int,
    entry_id: int,
    points: int,
    kind: ReversalKind,
    order_id: str | None,
    now: datetime,
) -> None:
    """points.reversed, in the correction's transaction, after everything that could refuse it."""
    await record_event(
        conn,
        EventType.POINTS_REVERSED,
        points_reversed(
            member_number=await member_number(conn, member_id),
            partner_id=partner_id,
            entry_id=entry_id,
            points=points,
            kind=kind,
            order_id=order_id,
        ),
        member_id=member_id,
        partner_ids=[partner_id],
        occurred_at=now,
    )


def points_expired_event(
    member_id: int, member_number: str, by_issuer: dict[int, int], occurred_at: datetime
) -> Event:
    """One member's expiry in one transaction: the points of every issuer, issuers in id order."""
    issuers = sorted(p for p, n in by_issuer.items() if n > 0)
    data = {
        "memberNumber": member_number,
        "points": sum(by_issuer[p] for p in issuers),
        "byIssuer": [{"partnerId": partner_gid(p), "points": by_issuer[p]} for p in issuers],
    }
    return Event(
        EventType.POINTS_EXPIRED, data, member_id=member_id, partner_ids=issuers, occurred_at=occurred_at
    )


def reward_redeemed(
    *,
    member_number: str,
    partner_id: int,
    reward_id: int,
    reward_name: str,
    points: int,
    quantity: int,
    entry_id: int,
    voucher_code: str | None,
) -> dict[str, Any]:
    return {
        "memberNumber": member_number,
        "partnerId": partner_gid(partner_id),
        "rewardId": to_global_id("Reward", reward_id),
        "rewardName": reward_name,
        "points": points,
        "quantity": quantity,
        "transactionId": transaction_gid(entry_id),
        "voucherCode": voucher_code,
    }


async def member_number(conn: DbConnection, member_id: int, known: str | None = None) -> str:
    """The member's number for a payload: `known` when the caller has it (it named the member by
    it), else one lookup."""
    if known is not None:
        return known
    found = await members.member_numbers(conn, [member_id])
    return found[member_id]


async def record_expiries(conn: DbConnection, expired: Iterable[tuple[int, int, int]], now: datetime) -> None:
    """points.expired, one event per member, from (member id, issuer id, points) rows: the
    worker's expiry batch and the re-expiry of a cancelled redemption's lapsed lots."""
    by_member: dict[int, dict[int, int]] = {}
    for member_id, issuer_id, points in expired:
        issuers = by_member.setdefault(member_id, {})
        issuers[issuer_id] = issuers.get(issuer_id, 0) + points
    by_member = {m: i for m, i in by_member.items() if sum(i.values()) > 0}
    if not by_member:
        return
    numbers = await members.member_numbers(conn, sorted(by_member))
    await record_events(
        conn,
        [points_expired_event(m, numbers[m], by_member[m], now) for m in sorted(by_member) if m in numbers],
    )
