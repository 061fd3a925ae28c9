"""The ledger's front door: every operation its schema (and other services) calls.

Moving points: earn (`earn`), redeem (`spending`), refunds and cancellations (`corrections`),
holds at a checkout (`holds`), rewards bought with points (`rewards`). Each is one transaction,
runs under the member's wallet lock, checks everything that can refuse it before it writes, and
is exactly-once per idempotency key (`idempotency`). Reading points: `queries`. The coalition's
expiry policy: `policy`.

Operations that name a member by number are guarded here, the same way for all of them: a partner
client that got too many MEMBER_NOT_FOUND answers lately is refused (RATE_LIMITED) before anything
is looked up, and each MEMBER_NOT_FOUND (or MEMBER_CODE_INVALID: a wrong spend code) it gets counts
against it (`members.refuse_if_rate_limited`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from services.ledger import bulk_earn, earn, holds, policy, rewards, spending
from services.ledger.bulk_batch import PurchaseItem
from services.ledger.cancellations import cancel_redemption
from services.ledger.coalition_credit import Credit, credit_coalition_points, credit_points
from services.ledger.corrections import (
    DecideRefund,
    OnRefunded,
    PurchaseToRefund,
    RefundBooked,
    RefundDecision,
    reverse_purchase,
)
from services.ledger.earn import Decide, EarnDecision, check_purchase
from services.ledger.holds import capture_redemption, void_redemption
from services.ledger.idempotency import run_idempotent
from services.ledger.journal import lock_wallet
from services.ledger.outcomes import Outcome, check_common, check_money
from services.ledger.policy import Policy
from services.ledger.purchases import (
    activity_at_partner,
    earn_details,
    earned_in_periods,
    first_available_purchases,
    qualifying_points,
)
from services.ledger.queries import (
    Balance,
    ExpiringPoints,
    MemberExpiry,
    TransactionView,
    balance,
    expiring_points,
    points_expiring_soon,
    transactions,
)
from services.ledger.transfers import TransferBooked, book_donation, book_transfer, lock_pair
from services.members import service as members
from shared import sql
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Forbidden, Validator
from shared.money import Money
from shared.settings import get_settings

__all__ = [
    "Balance",
    "Credit",
    "Decide",
    "DecideRefund",
    "EarnDecision",
    "ExpiringPoints",
    "MemberExpiry",
    "OnRefunded",
    "Outcome",
    "Policy",
    "PurchaseItem",
    "PurchaseToRefund",
    "RefundBooked",
    "RefundDecision",
    "TransactionView",
    "TransferBooked",
    "activity_at_partner",
    "authorize_redemption",
    "balance",
    "book_donation",
    "book_transfer",
    "cancel_redemption",
    "capture_redemption",
    "check_batch_size",
    "check_common",
    "check_money",
    "check_purchase",
    "credit_coalition_points",
    "credit_points",
    "earn_details",
    "earned_in_periods",
    "expiring_points",
    "expiry_policy",
    "first_available_purchases",
    "import_client_id",
    "import_purchases",
    "lock_pair",
    "lock_wallet",
    "member_balance_to_watch",
    "own_balance_to_watch",
    "points_expiring_soon",
    "qualifying_points",
    "record_purchase",
    "record_purchases",
    "redeem_points",
    "redeem_reward",
    "require_still_watchable",
    "reverse_purchase",
    "run_idempotent",
    "transactions",
    "update_expiry_policy",
    "void_redemption",
]


GUESSES = (UserErrorCode.MEMBER_NOT_FOUND, UserErrorCode.MEMBER_CODE_INVALID)


async def _by_member_number(
    db: Database, principal: Principal, operation: Callable[[], Awaitable[Outcome]]
) -> Outcome:
    await members.refuse_if_rate_limited(db, principal)
    outcome = await operation()
    # A wrong member code counts like an unknown number: guessing 8-digit codes is as slow as
    # guessing member numbers.
    if any(e.code in GUESSES for e in outcome.errors):
        await members.note_lookup_miss(db, principal)
    return outcome


async def record_purchase(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str,
    order_id: str,
    amount: Money,
    occurred_at: datetime | None = None,
    decision: EarnDecision | None,
    decide: Decide | None = None,
    request_extra: dict[str, Any] | None = None,
) -> Outcome:
    """Books the points the earning service decided for a purchase (`decision`, or `decide`
    under the member's wallet lock): a lot pending until the partner's return window has passed."""
    return await _by_member_number(
        db,
        principal,
        lambda: earn.record_purchase(
            db,
            principal,
            idempotency_key=idempotency_key,
            member_number=member_number,
            order_id=order_id,
            amount=amount,
            occurred_at=occurred_at,
            decision=decision,
            decide=decide,
            request_extra=request_extra,
        ),
    )


MAX_BATCH = 1000  # recordPurchases: what one request may carry (the gateway's body limit fits it)


def check_batch_size(count: int) -> None:
    """BATCH_TOO_LARGE (naming `purchases`) past MAX_BATCH: asked by the earning service before it
    evaluates a single purchase, and again here for any other caller."""
    if count > MAX_BATCH:
        raise DomainError.single(
            UserErrorCode.BATCH_TOO_LARGE,
            f"purchases holds {count} purchases; at most {MAX_BATCH} per request",
            "purchases",
        )


async def record_purchases(
    db: Database, principal: Principal, purchases: list[PurchaseItem]
) -> list[Outcome]:
    """Books many purchases whose points the earning service decided (`bulk_earn`): one outcome
    each, in input order; one bad purchase does not fail the others. Guarded like a single earn: a
    client over its limit of unknown member numbers is refused outright (RATE_LIMITED), a batch
    may name no more unknown numbers than the limit allows (later purchases get
    LOOKUP_LIMIT_REACHED), and each unknown number counts against the client."""
    partner_id = principal.require_partner("points:earn")
    check_batch_size(len(purchases))
    await members.refuse_if_rate_limited(db, principal)
    outcomes = await bulk_earn.earn_many(
        db,
        client_id=principal.client_id,
        partner_id=partner_id,
        purchases=purchases,
        lookup_allowance=get_settings().member_miss_limit,
    )
    misses = sum(1 for o in outcomes if any(e.code == UserErrorCode.MEMBER_NOT_FOUND for e in o.errors))
    if misses:
        await members.note_lookup_misses(db, principal, misses)
    return outcomes


def import_client_id(partner_id: int) -> str:
    """The idempotency scope of `coalition import purchases` for a partner: its own, so an import's
    keys never meet the partner's API keys, nor another partner's import of the same file."""
    return f"import:partner:{partner_id}"


async def import_purchases(
    db: Database, principal: Principal, partner_id: int, purchases: list[PurchaseItem]
) -> list[Outcome]:
    """A partner's purchases recorded by a coalition admin (the CSV import), their points decided
    by the earning service: the admin acts for the partner, and is not rate-limited (admins may
    see every member)."""
    principal.require_admin("admin:partners")
    return await bulk_earn.earn_many(
        db, client_id=import_client_id(partner_id), partner_id=partner_id, purchases=purchases
    )


async def redeem_points(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str,
    points: int,
    order_id: str,
    member_code: str | None = None,
) -> Outcome:
    """Spends a linked member's available points at the calling partner, first to expire first."""
    return await _by_member_number(
        db,
        principal,
        lambda: spending.redeem_points(
            db,
            principal,
            idempotency_key=idempotency_key,
            member_number=member_number,
            points=points,
            order_id=order_id,
            member_code=member_code,
        ),
    )


async def authorize_redemption(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str,
    points: int,
    order_id: str,
    expires_in: timedelta,
    member_code: str | None = None,
) -> Outcome:
    """Holds a linked member's points at a till until captured, voided or expired."""
    return await _by_member_number(
        db,
        principal,
        lambda: holds.authorize_redemption(
            db,
            principal,
            idempotency_key=idempotency_key,
            member_number=member_number,
            points=points,
            order_id=order_id,
            expires_in=expires_in,
            member_code=member_code,
        ),
    )


async def redeem_reward(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str | None,
    reward_id: str,
    quantity: int = 1,
    member_code: str | None = None,
) -> Outcome:
    """Buys a catalogue reward at the calling partner with a linked member's points, or (a member
    token) at the reward's partner with the member's own."""
    return await _by_member_number(
        db,
        principal,
        lambda: rewards.redeem_reward(
            db,
            principal,
            idempotency_key=idempotency_key,
            member_number=member_number,
            reward_id=reward_id,
            quantity=quantity,
            member_code=member_code,
        ),
    )


async def expiry_policy(db: Database) -> Policy:
    return await policy.read_policy(db)


async def update_expiry_policy(db: Database, principal: Principal, *, months: int, mode: str) -> Policy:
    return await policy.update_policy(db, principal, months=months, mode=mode)


def own_balance_to_watch(principal: Principal) -> int:
    """The member whose balance a member token may watch: its own, and nobody else's."""
    principal.require("member")
    if principal.member_id is None:
        raise Forbidden("balanceChanged is for member tokens: partners use memberBalanceChanged")
    return principal.member_id


async def member_balance_to_watch(db: Database, principal: Principal, member_number: str) -> int:
    """The member a partner's till may watch: one linked to the partner. An unknown number and a
    member not linked to the caller get the same MEMBER_NOT_FOUND, and count against the caller's
    lookups, as `member(memberNumber)` does."""
    principal.require_partner("members:read")
    v = Validator()
    members.check_member_number(v, member_number)
    v.raise_if_any()
    found = await members.find_member(db, principal, member_number)
    if found is None:
        raise members.member_not_found()
    return found.id


async def require_still_watchable(db: Database, principal: Principal, member_id: int) -> None:
    """Before each event of a partner's running `memberBalanceChanged`: the member must still be
    linked to the partner (unlinking and erasure delete the link), else the same MEMBER_NOT_FOUND
    a stranger gets, which ends the subscription. Asked of the database, not of the member cache,
    so it holds even while a gateway's link listener is down. Not counted as a lookup miss: the
    partner guessed nothing."""
    async with sql.connection(db) as conn:
        linked = await members.is_linked(conn, member_id, principal.partner_id or 0)
    if not linked:
        raise members.member_not_found()
