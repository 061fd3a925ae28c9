"""Telling whoever watches a member's balance that it moved: one `pg_notify` per points move.

Every operation that moves a member's points calls `notify` (or `notify_many` for the worker's
batches) inside the transaction that makes the move, after the move is written. PostgreSQL
delivers a notification only when, and if, that transaction commits (and drops one sent in a
savepoint that is rolled back), so a subscriber never hears of a change that did not happen, and
hears of it only once the balance it will read shows it. Every gateway process LISTENs on
CHANNEL over its one listener connection (`balance_feed.BalanceFeed` on `shared.listening`), so a
member watching through one gateway hears of an earn made through another.

The payload is small and says only who, why and when (`{"m": member_id, "r": reason, "at": …}`):
the listener reads the balance itself, once per burst, for the members it has subscribers for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.sql import DbConnection, Sql

CHANNEL = "coalition_balance"


class BalanceChangeReason(StrEnum):
    """Why a member's balance moved: one per kind of points move the ledger makes."""

    EARN = "EARN"  # points for a purchase (pending, or available at once)
    ACTIVATION = "ACTIVATION"  # pending points became available (the worker, after the return window)
    REDEEM = "REDEEM"  # points spent: redeemPoints or a reward bought
    HOLD = "HOLD"  # points held by an authorization at a till
    CAPTURE = "CAPTURE"  # a hold spent (the rest released)
    VOID = "VOID"  # a hold released by the partner
    HOLD_EXPIRY = "HOLD_EXPIRY"  # a hold released at its expiry (the worker)
    REVERSE = "REVERSE"  # points taken back for a refund
    CANCEL_REDEMPTION = "CANCEL_REDEMPTION"  # a redemption undone: its points came back
    EXPIRY = "EXPIRY"  # points that expired unspent (the worker)
    ERASURE = "ERASURE"  # the member was erased: what remained was forfeited
    TRANSFER = "TRANSFER"  # points given to or received from another member
    CURRENT = "CURRENT"  # the first event of a subscription: the balance as it starts
    RESYNC = "RESYNC"  # the feed lost its connection: the current balance, moves may be unnamed


NOTIFY_MANY = Sql(
    "SELECT count(pg_notify(:channel, json_build_object('m', m, 'r', CAST(:reason AS text),"
    " 'at', CAST(:at AS text))::text))"
    " FROM (SELECT DISTINCT m FROM unnest(CAST(:ids AS bigint[])) AS m) AS members"
)


@dataclass(frozen=True)
class BalanceNotice:
    """One notification as a listener reads it back."""

    member_id: int
    reason: BalanceChangeReason
    occurred_at: datetime

    @classmethod
    def parse(cls, payload: str) -> BalanceNotice:
        """Raises ValueError (or KeyError, TypeError) on a payload that is not ours."""
        data = json.loads(payload)
        return cls(int(data["m"]), BalanceChangeReason(data["r"]), datetime.fromisoformat(data["at"]))


async def notify(conn: DbConnection, member_id: int, reason: BalanceChangeReason, at: datetime) -> None:
    """In the transaction that moved the member's points, after the move: delivered at commit."""
    await notify_many(conn, [member_id], reason, at)


async def notify_many(
    conn: DbConnection, member_ids: Iterable[int], reason: BalanceChangeReason, at: datetime
) -> None:
    """One notification per distinct member, in one statement (the worker's batches)."""
    ids = list(member_ids)
    if ids:
        await NOTIFY_MANY.fetchval(conn, channel=CHANNEL, reason=reason.value, at=at.isoformat(), ids=ids)
