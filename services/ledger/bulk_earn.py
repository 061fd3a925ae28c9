"""Bulk earning: a batch of purchases whose points the caller decided, written set-based.

The ledger knows no rules: the earning service (`services.earning.bulk`) evaluates each purchase
with its engine and hands over, per item, the points and the document to store (`decision`), or
a `decide` function when the points depend on what the member earned before (a cap per member).

`earn_many` books what the same purchases sent one by one to `earn.record_purchase` would book —
the same purchases, EARN entries, postings, lots, wallet balances, links and stored answers — but
with a handful of statements for the whole batch instead of two per purchase:

1. (autocommit) the members behind the batch's numbers, one `unnest` lookup;
2. in one transaction: lock the wallets in member-id order (DESIGN.md: every multi-member lock
   takes rows in the same order, so batches, single earns and spends never deadlock), read the
   keys already answered, write purchases + entries + postings + lots + wallet balances in one
   statement (`ON CONFLICT (partner_id, order_id) DO NOTHING` claims the order ids), store every
   answer under its key, link first-time members, one `pg_notify` per member; commit.

Per-item outcomes, in input order; no item can fail another:
- bad input (as recordPurchase checks it), wrong currency, too old: userErrors, not stored (the
  caller fixes the input and retries with the same key, as for a single earn);
- an unknown (or erased) member, a duplicate order id: userErrors stored under the key;
- a key answered before: its stored answer, or IDEMPOTENCY_KEY_REUSED for another input.

A member's first earn opens their wallet in the batch (`accounts.open_wallets`, set-based). Rare
cases go through the single general path (`earn.earn_points`) one by one, after the batch has
committed, in input order, with the same decision (or `decide`) the caller gave: a purchase that
comes with `decide` (it must read the member's earnings under the wallet lock), a member with debt
to repay (the repayment walks their debts), a member erased between the lookup and the lock, a
second use of a key or order id inside the batch (one by one, the later one replays, is
IDEMPOTENCY_KEY_REUSED or DUPLICATE_ORDER). Once one of a member's purchases takes the single
path, the member's later purchases in the batch follow it: a `decide` then sees exactly the
member's earlier purchases of the batch, as it would one by one, and none of the later ones.

Invariant: the batch is one transaction; if a racing writer answers one of our keys first (its row
appears between our read and our claim), the whole batch rolls back and runs again, and the next
attempt replays that key — exactly `run_idempotent`'s remedy for a single earn.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from services.ledger import accounts, bulk_batch, earn, policy
from services.ledger.bulk_batch import BatchItem, PurchaseItem
from services.ledger.idempotency import MAX_ATTEMPTS, RETRYABLE, fingerprint
from services.ledger.outcomes import Outcome
from services.members import service as members
from services.members import tiers as member_tiers
from services.partners import service as partners
from services.partners.service import PartnerView
from shared import clock
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import UserError, Validator
from shared.sql import connection

OPERATION = earn.OPERATION  # a bulk item and a single earn share keys: a retry via either replays


class _Expiries:
    """The batch's expiry dates, each computed once per distinct occurredAt (a day's sales share
    a few instants; `expiry_for` is two calendar additions), and the batch's one extension date."""

    def __init__(self, expiry: policy.Policy, now: datetime):
        self.expiry, self.now = expiry, now
        self.extend_until = clock.add_months(now, expiry.months) if expiry.activity_extends else None
        self._found: dict[datetime, datetime] = {}

    def of(self, occurred: datetime) -> datetime:
        found = self._found.get(occurred)
        if found is None:
            found = self._found[occurred] = self.expiry.expiry_for(occurred, self.now)
        return found


def _input_errors(item: PurchaseItem, partner: PartnerView, expiries: _Expiries) -> list[UserError]:
    """What the single earn refuses before it looks anything up, in the same order. The field
    checks are skipped for an item whose caller ran exactly them (`checked`: the earning service
    runs `check_purchase` on every purchase before it decides its points)."""
    v = Validator()
    if not item.checked:
        earn.check_purchase(
            v,
            idempotency_key=item.idempotency_key,
            member_number=item.member_number,
            order_id=item.order_id,
            amount=item.amount,
            occurred_at=item.occurred_at,
        )
    if v.errors:
        return v.errors
    if item.amount.currency != partner.currency:
        v.add(
            "amount.currency", UserErrorCode.CURRENCY_MISMATCH, f"amount.currency must be {partner.currency}"
        )
    elif expiries.of(item.occurred_at or expiries.now) <= expiries.now:
        v.add(
            "occurredAt", UserErrorCode.TOO_OLD, "points for a purchase this old would already have expired"
        )
    return v.errors


async def earn_many(
    db: Database,
    *,
    client_id: str,
    partner_id: int,
    purchases: list[PurchaseItem],
    lookup_allowance: int | None = None,
) -> list[Outcome]:
    """One outcome per purchase, in input order (see the module docstring).

    `lookup_allowance`: after that many unknown member numbers (in input order), every later
    purchase of the batch is refused with LOOKUP_LIMIT_REACHED before anything is looked up for
    it, so a batch probes no more numbers than as many single calls would before RATE_LIMITED.
    """
    if not purchases:
        return []
    now = clock.now()
    outcomes: list[Outcome | None] = [None] * len(purchases)
    async with connection(db) as conn:
        partner = await partners.cached_partner(db, conn, partner_id)
        if partner is None or partner.kind != "PARTNER":  # the coalition and charities never earn
            gone = UserError(UserErrorCode.PARTNER_NOT_FOUND, None, "this partner does not earn points")
            return [Outcome(None, [gone]) for _ in purchases]
        await accounts.ensure_partner_accounts(db, conn, partner_id)
        issuance = await accounts.partner_account(conn, partner_id, "PARTNER_ISSUANCE")
        expiry = await policy.current(db, conn)
        tiers = await member_tiers.cached_tiers(db, conn)

        expiries = _Expiries(expiry, now)
        batch: list[BatchItem] = []
        later: list[BatchItem] = []  # one by one through the general path, after the batch
        keys_seen: set[str] = set()
        orders_seen: set[str] = set()
        members_later: set[str] = set()  # their later purchases follow them to the single path
        for index, purchase in enumerate(purchases):
            errors = _input_errors(purchase, partner, expiries)
            if errors:
                outcomes[index] = Outcome(None, errors)
                continue
            if (purchase.decision is None) == (purchase.decide is None):
                raise TypeError("each purchase of a bulk earn needs a decision or a decide function")
            item = BatchItem(index, purchase, fingerprint(OPERATION, purchase.request()))
            single = (
                purchase.decide is not None
                # coalition-funded points (two issuers, two lots) are booked by the general path
                or (purchase.decision is not None and purchase.decision.coalition_points > 0)
                or purchase.idempotency_key in keys_seen
                or purchase.order_id in orders_seen
                or purchase.member_number in members_later
            )
            keys_seen.add(purchase.idempotency_key)
            orders_seen.add(purchase.order_id)
            if single:
                members_later.add(purchase.member_number)
            (later if single else batch).append(item)

        found = await members.members_at_partner(
            conn, sorted({i.purchase.member_number for i in batch + later}), partner_id
        )
        misses = 0
        for item in sorted(batch + later, key=lambda i: i.index):
            if lookup_allowance is not None and misses >= lookup_allowance:
                outcomes[item.index] = Outcome(None, [_limited()])
                continue
            member = found.get(item.purchase.member_number)
            if member is None:
                misses += 1
                item.response = {"errors": [members.member_not_found().errors[0].as_dict()]}
            else:
                item.member_id, item.enrolled = member.member_id, member.enrolled
                item.earn = _terms(item, member.member_id, partner, expiries)
        batch = [i for i in batch if outcomes[i.index] is None]
        later = [i for i in later if outcomes[i.index] is None]

        later_too: list[BatchItem] = []
        for attempt in range(MAX_ATTEMPTS if batch else 0):
            try:
                later_too = await bulk_batch.write_batch(
                    conn, client_id, partner_id, issuance, batch, now, expiry, partner, tiers
                )
                break
            except (bulk_batch.LostKeyRace, *RETRYABLE):
                if attempt == MAX_ATTEMPTS - 1:
                    raise
        deferred = {i.index for i in later_too}
        for item in batch:
            if item.index not in deferred:
                assert item.response is not None
                outcomes[item.index] = replace(Outcome.of(item.response), replayed=item.replayed)

    for item in sorted(later + later_too, key=lambda i: i.index):
        outcomes[item.index] = Outcome.of(await _one_by_one(db, client_id, partner_id, item, now))
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


def _limited() -> UserError:
    return UserError(
        UserErrorCode.LOOKUP_LIMIT_REACHED,
        "memberNumber",
        "this batch named too many unknown member numbers: later purchases were not looked at",
    )


def _terms(item: BatchItem, member_id: int, partner: PartnerView, expiries: _Expiries) -> earn.Earn | None:
    """The terms of a purchase the batch writes; None for one whose points are decided under the
    lock (`decide`: the single path)."""
    decision = item.purchase.decision
    if decision is None:
        return None
    now = expiries.now
    occurred = item.purchase.occurred_at or now
    return earn.Earn(
        partner_id=partner.id,
        member_id=member_id,
        order_id=item.purchase.order_id,
        amount=item.purchase.amount,
        points=decision.points,
        occurred_at=occurred,
        available_at=occurred + timedelta(days=partner.return_window_days),
        expires_at=expiries.of(occurred),
        recorded_at=now,
        extend_until=expiries.extend_until,
        detail=decision.detail,
        member_number=item.purchase.member_number,
    )


async def _one_by_one(
    db: Database, client_id: str, partner_id: int, item: BatchItem, now: datetime
) -> dict[str, Any]:
    purchase = item.purchase
    return await earn.earn_points(
        db,
        client_id=client_id,
        key=purchase.idempotency_key,
        partner_id=partner_id,
        member_number=purchase.member_number,
        order_id=purchase.order_id,
        amount=purchase.amount,
        occurred_at=purchase.occurred_at or now,
        request=purchase.request(),
        decision=purchase.decision,
        decide=purchase.decide,
    )
