"""Bulk earning through the earning engine: recordPurchases and the CSV import.

Each purchase of a batch is checked and evaluated exactly as `service.record_purchase` checks and
evaluates it (`purchases.check`, `decisions.decision_for`: the same rules in force at its
occurredAt, the same breakdown document), then the whole batch goes to the ledger's set-based
write (`ledger.record_purchases` / `ledger.import_purchases`), which stores each decided points
AND its document. A purchase at a partner with a cap per member in force carries a `decide`
function instead: the ledger books it on its single path, under the member's wallet lock, after
the set-based write (correct first: its points depend on what the member earned before).

Per-item outcomes, in input order; bad input of one purchase (as recordPurchase refuses it: lines
that do not add up, a bad promo code…) fails only that purchase and is not stored, so the caller
may fix it and retry with the same key. Promo codes that did nothing come back as userErrors next
to the recorded purchase, as for recordPurchase (a replay repeats them: they are read from the
stored document).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.earning import decisions, purchases
from services.earning.purchases import PurchaseInput
from services.earning.rules import PartnerRules
from services.ledger import service as ledger
from services.members import tiers as member_tiers
from services.members.tiers import TierSet
from services.partners.service import PartnerView
from shared import sql
from shared.access import Principal
from shared.database import Database
from shared.errors import Validator

Book = Callable[[list[ledger.PurchaseItem]], Awaitable[list[ledger.Outcome]]]


async def record_purchases(
    db: Database, principal: Principal, batch: list[PurchaseInput]
) -> list[ledger.Outcome]:
    """recordPurchases: the calling partner's purchases. BATCH_TOO_LARGE (DomainError) before any
    purchase is looked at."""
    partner_id = principal.require_partner("points:earn")
    ledger.check_batch_size(len(batch))
    return await _earn(db, partner_id, batch, lambda items: ledger.record_purchases(db, principal, items))


async def import_purchases(
    db: Database, principal: Principal, partner_id: int, batch: list[PurchaseInput]
) -> list[ledger.Outcome]:
    """`coalition import purchases`: a coalition admin records a partner's purchases (under the
    partner's import scope of idempotency keys)."""
    principal.require_admin("admin:partners")
    return await _earn(
        db, partner_id, batch, lambda items: ledger.import_purchases(db, principal, partner_id, items)
    )


@dataclass
class Prepared:
    """A batch checked and decided (pure computation, no database): the outcomes of purchases
    refused on their input, and the items the ledger is to book, each with its input index."""

    size: int
    outcomes: dict[int, ledger.Outcome] = field(default_factory=dict)
    to_book: list[tuple[int, ledger.PurchaseItem]] = field(default_factory=list)


async def import_terms(
    db: Database, principal: Principal, partner_id: int
) -> tuple[PartnerView | None, PartnerRules]:
    """What `prepare` needs for an import at the partner (from the process's caches), after the
    admin check: the import prepares batch n+1 in a thread while batch n is booked."""
    principal.require_admin("admin:partners")
    return await decisions.partner_and_rules(db, partner_id)


def prepare(
    partner: PartnerView | None,
    rules: PartnerRules,
    batch: list[PurchaseInput],
    tiers: TierSet = TierSet(),
    tier_of: dict[str, int] | None = None,
) -> Prepared:
    """Each purchase checked (`purchases.check`) and decided (`decisions.decision_for`) exactly as
    recordPurchase checks and decides it. Thread-safe: it reads only its arguments and the clock."""
    prepared = Prepared(len(batch))
    for index, purchase in enumerate(batch):
        v = Validator()
        basket = purchases.check(v, purchase)
        if v.errors:
            prepared.outcomes[index] = ledger.Outcome(None, v.errors)
            continue
        decision, decide = decisions.decision_for(purchase, basket, partner, rules, tiers, tier_of)
        item = ledger.PurchaseItem(
            idempotency_key=purchase.idempotency_key,
            member_number=purchase.member_number,
            order_id=purchase.order_id,
            amount=purchase.amount,
            occurred_at=purchase.occurred_at,
            decision=decision,
            decide=decide,
            request_extra=purchase.request_extra(),
            checked=True,  # purchases.check ran ledger.check_purchase on these very fields
        )
        prepared.to_book.append((index, item))
    return prepared


async def book_import(
    db: Database, principal: Principal, partner_id: int, prepared: Prepared
) -> list[ledger.Outcome]:
    """Books a prepared import batch (`ledger.import_purchases`); outcomes in input order."""
    return await _book(prepared, lambda items: ledger.import_purchases(db, principal, partner_id, items))


async def _earn(
    db: Database, partner_id: int, batch: list[PurchaseInput], book: Book
) -> list[ledger.Outcome]:
    if not batch:
        return []
    partner, rules = await decisions.partner_and_rules(db, partner_id)
    tiers, tier_of = await batch_tiers(db, batch)
    return await _book(prepare(partner, rules, batch, tiers, tier_of), book)


async def batch_tiers(db: Database, batch: list[PurchaseInput]) -> tuple[TierSet, dict[str, int] | None]:
    """The tiers and, when any multiplies, the batch's members' tiers in one statement (read
    before the batch's lock: a purchase racing its member's upgrade may earn at the tier before,
    as if it had come first). None: no tier multiplies, nothing to read."""
    tiers = await decisions.tier_set(db)
    if not decisions.multiplying(tiers):
        return tiers, {}
    async with sql.connection(db) as conn:
        return tiers, await member_tiers.tiers_by_number(conn, sorted({p.member_number for p in batch}))


async def _book(prepared: Prepared, book: Book) -> list[ledger.Outcome]:
    outcomes: list[ledger.Outcome | None] = [prepared.outcomes.get(i) for i in range(prepared.size)]
    to_book = prepared.to_book
    booked = await book([item for _, item in to_book]) if to_book else []
    for (index, _), outcome in zip(to_book, booked, strict=True):
        if outcome.result is not None:
            warnings = purchases.promo_code_errors(outcome.result.get("detail"))
            outcome = ledger.Outcome(outcome.result, [*outcome.errors, *warnings], outcome.replayed)
        outcomes[index] = outcome
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]
