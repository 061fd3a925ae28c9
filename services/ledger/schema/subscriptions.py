"""Live balances over GraphQL subscriptions (graphql-transport-ws on /graphql).

Each subscription is one mailbox in the process's `BalanceFeed`; the access check is the ledger
service's (`own_balance_to_watch`, `member_balance_to_watch`), made when the subscription starts,
and for a partner again before every event (`require_still_watchable`: a member who unlinked the
partner, or was erased, is no longer its to watch). The socket itself is watched by the gateway:
a token revoked or expired closes it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from typing import Annotated

import strawberry

from services.ledger import service as ledger
from services.ledger.balance_feed import BalanceEvent, BalanceFeed
from services.ledger.live import BalanceChangeReason
from shared.error_codes import UserErrorCode
from shared.graphql_types import GraphQLInfo, Points, graphql_enum
from shared.operations import MEMBER_CODES, Access, partner, subscription

BalanceChangeReasonType = graphql_enum(
    BalanceChangeReason,
    name="BalanceChangeReason",
    description="Why a member's balance moved (the last move, when several came in one burst).",
    values={
        BalanceChangeReason.EARN: "Points for a purchase (recordPurchase).",
        BalanceChangeReason.ACTIVATION: "Pending points became available after the partner's return window.",
        BalanceChangeReason.REDEEM: "Points spent (redeemPoints, or a reward bought).",
        BalanceChangeReason.HOLD: "Points held by an authorization at a till (authorizeRedemption).",
        BalanceChangeReason.CAPTURE: "A hold spent (captureRedemption); what was not captured is released.",
        BalanceChangeReason.VOID: "A hold released by the partner (voidRedemption).",
        BalanceChangeReason.HOLD_EXPIRY: "A hold released at its expiresAt without being captured.",
        BalanceChangeReason.REVERSE: "Points taken back for a refund (reversePurchase).",
        BalanceChangeReason.CANCEL_REDEMPTION: "A redemption undone: its points came back"
        " (cancelRedemption).",
        BalanceChangeReason.EXPIRY: "Points that expired unspent.",
        BalanceChangeReason.ERASURE: "The member was erased (eraseMember): what remained was forfeited."
        " A partner's subscription ends instead (MEMBER_NOT_FOUND); a member's socket closes (4401).",
        BalanceChangeReason.TRANSFER: "Points given to or received from another member (transferPoints).",
        BalanceChangeReason.CURRENT: "The first event of every subscription: the balance as the"
        " subscription starts (every later move is reported after it).",
        BalanceChangeReason.RESYNC: "The server's feed reconnected after a loss: this is the current"
        " balance, and moves in between may not have been reported one by one.",
    },
)


@strawberry.type(description="A member's balance right after it moved.")
class BalanceChange:
    available: Points = strawberry.field(
        description="Spendable now; negative when a refund took back points already spent."
    )
    pending: Points = strawberry.field(description="Earned but still in the partner's return window.")
    held: Points = strawberry.field(
        description="Reserved by authorizations at a till, until captured, voided or expired."
    )
    reason: BalanceChangeReasonType = strawberry.field(  # type: ignore[valid-type]
        description="Why it moved (the last move, when several came together)."
    )
    occurred_at: datetime = strawberry.field(description="When the move was made.")

    @classmethod
    def of(cls, event: BalanceEvent) -> BalanceChange:
        b = event.balance
        return cls(
            available=Points(b.available),
            pending=Points(b.pending),
            held=Points(b.held),
            reason=event.reason,
            occurred_at=event.occurred_at,
        )


async def _watch(
    feed: BalanceFeed, member_id: int, still_allowed: Callable[[], Awaitable[None]] | None = None
) -> AsyncGenerator[BalanceChange, None]:
    """The member's balance events. `still_allowed` runs after each event's balance was read and
    before it is sent; raising ends the subscription with that error. The check comes after the
    read, so a balance that is sent was read while the caller still could see it."""
    # Subscribed before the first read: a move committed after that read is heard of.
    async with feed.subscribe(member_id) as subscription:
        yield BalanceChange.of(await feed.current(member_id))
        while True:
            event = await subscription.next()
            if still_allowed is not None:
                await still_allowed()
            yield BalanceChange.of(event)


def _feed(info: GraphQLInfo) -> BalanceFeed:
    feed = info.context.balance_feed
    if feed is None:
        raise RuntimeError("subscriptions need the gateway's balance feed")
    return feed


# Who may watch their own balance: the member token's own member.
MEMBER_ITSELF = Access("a member's own token (scope `member`), for the member's own balance", ("member",))


@strawberry.type
class LedgerSubscription:
    @subscription(
        "The caller's own balance, each time a points move changes it (over graphql-transport-ws on"
        " /graphql). The first event is the balance as the subscription starts (reason CURRENT).",
        access=MEMBER_ITSELF,
    )
    async def balance_changed(self, info: GraphQLInfo) -> AsyncGenerator[BalanceChange, None]:
        member_id = ledger.own_balance_to_watch(info.context.principal)
        async for change in _watch(_feed(info), member_id):
            yield change

    @subscription(
        "A linked member's balance, each time a points move changes it (a till showing the balance"
        " live). An unknown number and a member not linked to the caller are refused alike; once"
        " the member unlinks the caller or is erased, the subscription ends with the same"
        " MEMBER_NOT_FOUND at the next move, and that move's balance is not sent.",
        access=partner("members:read", ", for members linked to it"),
        codes=(*MEMBER_CODES, UserErrorCode.REQUIRED),
    )
    async def member_balance_changed(
        self,
        info: GraphQLInfo,
        member_number: Annotated[
            str, strawberry.argument(description="The 12-digit coalition number, as on the card.")
        ],
    ) -> AsyncGenerator[BalanceChange, None]:
        db, principal = info.context.db, info.context.principal
        member_id = await ledger.member_balance_to_watch(db, principal, member_number)

        async def still_linked() -> None:  # unlinked or erased since: MEMBER_NOT_FOUND ends it
            await ledger.require_still_watchable(db, principal, member_id)

        async for change in _watch(_feed(info), member_id, still_linked):
            yield change
