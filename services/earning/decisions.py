"""What one purchase earns, as the ledger is handed it: the points and the stored document decided
up front (`ledger.EarnDecision`), or — for a partner with a cap per member in force, or with a
guarded promotion live (a budget, a per-member limit, first purchase, member not seen: see
`promotion_awards`) — a `decide` function the ledger runs under the member's wallet lock, so the
member's earnings, awards and activity, and the budgets, are read (and reserved) exactly.

`recordPurchase`, `recordPurchases` and the CSV import all take their decisions here, so a purchase
earns the same whichever way it arrives (the twin-worlds tests pin it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.earning import cache, promo_codes, promotion_awards, promotion_cache, purchases
from services.earning.engine import Basket, MemberHistory, Result, Terms, TierBonus, evaluate
from services.earning.promotions import MemberFacts, PromoContext, Promotion
from services.earning.purchases import PurchaseInput
from services.earning.rules import PartnerRules
from services.ledger import service as ledger
from services.members import tiers as member_tiers
from services.members.tiers import TierSet
from services.partners import service as partners
from shared import clock, sql
from shared.database import Database
from shared.sql import DbConnection


@dataclass(frozen=True)
class Rules:
    """A partner's earn rules and the promotions that may apply at it (its own, the coalition's)."""

    rules: PartnerRules
    promotions: tuple[Promotion, ...] = ()

    def in_force(self, at: datetime) -> tuple:
        return self.rules.in_force(at)


async def partner_and_rules(db: Database, partner_id: int) -> tuple[partners.PartnerView | None, Rules]:
    """All from the process's caches; a connection only when one of them misses."""
    partner = db.cache.get(("partner", partner_id))
    rules = cache.rules_cache(db).peek(partner_id)
    promos = promotion_cache.promotions_cache(db)
    own, coalition = promos.peek(partner_id), promos.peek(promotion_cache.COALITION)
    if partner is None or rules is None or own is None or coalition is None:
        async with sql.connection(db) as conn:
            partner = await partners.cached_partner(db, conn, partner_id)
            rules = await cache.rules_cache(db).rules(conn, partner_id)
            zone = partner.time_zone if partner else "UTC"
            own = await promos.load(conn, partner_id, zone)
            coalition = await promos.load(conn, promotion_cache.COALITION, "UTC")
    return partner, Rules(rules, own + coalition)


async def tier_set(db: Database) -> TierSet:
    """The tier definitions, from the process's cache (a connection only when it misses)."""
    found = member_tiers.peek_tiers(db)
    return found if found is not None else await member_tiers.cached_tiers(db)


def multiplying(tiers: TierSet) -> bool:
    """Whether any tier multiplies points (then a purchase's points depend on the member's tier)."""
    return any(t.multiplier > 1 for t in tiers.tiers)


def periods(at: datetime, time_zone: str) -> list[tuple[datetime, datetime]]:
    """The purchase's day and month in the partner's time zone, as UTC instants [start, end)."""
    zone = ZoneInfo(time_zone)
    local = at.astimezone(zone)
    day = datetime(local.year, local.month, local.day, tzinfo=zone)
    next_day = (day + timedelta(days=1, hours=3)).replace(hour=0)  # through a DST change
    month = datetime(local.year, local.month, 1, tzinfo=zone)
    next_month = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=zone)
    return [(day, next_day), (month, next_month)]


async def history(
    conn: DbConnection, member_id: int, partner: partners.PartnerView, at: datetime
) -> MemberHistory:
    day, month = await ledger.earned_in_periods(conn, member_id, partner.id, periods(at, partner.time_zone))
    return MemberHistory(day=day, month=month)


def terms_at(partner: partners.PartnerView | None, rules: Rules, at: datetime) -> Terms:
    """The partner's base terms, its rules in force and the promotions live at `at` (no partner:
    nothing is earned, and the ledger answers PARTNER_NOT_FOUND)."""
    live = tuple(p for p in rules.promotions if p.live_at(at)) if partner else ()
    return Terms(
        partner.earn_rate if partner else 0,
        partner.earn_rounding if partner else "FLOOR",
        rules.in_force(at),
        live,
    )


def context(
    purchase: PurchaseInput, partner: partners.PartnerView | None, at: datetime, **more: Any
) -> PromoContext:
    """The engine's promotion inputs for the purchase (`more`: member facts, exclusions)."""
    return PromoContext(
        at=at,
        currency=partner.currency if partner else purchase.amount.currency,
        channel=purchase.channel,
        **{"unlocked": purchase.unlocked, **more},
    )


async def locked_inputs(
    conn: DbConnection, member_id: int, partner: partners.PartnerView, terms: Terms, at: datetime
) -> tuple[MemberHistory, MemberFacts, frozenset[int]]:
    """What the decide path reads under the member's lock: earnings in the cap periods, the
    member's facts at the partner, the promotions whose per-member limit is reached."""
    hist = await history(conn, member_id, partner, at) if terms.member_caps else MemberHistory()
    facts = MemberFacts()
    if any(p.first_purchase or p.inactive_days is not None for p in terms.promotions):
        bought, seen = await ledger.activity_at_partner(conn, member_id, partner.id)
        facts = MemberFacts(bought_before=bought, last_seen=seen, known=True)
    limited = await promotion_awards.limited(conn, member_id, terms.promotions)
    return hist, facts, limited


def bonus_of(tiers: TierSet, tier_id: int | None) -> TierBonus | None:
    """The engine's view of the member's tier; None without one (or at a multiplier of 1)."""
    tier = tiers.by_id(tier_id) if tier_id is not None else tiers.reached(0)  # the base tier
    if tier is None or tier.multiplier <= 1:
        return None
    return TierBonus(tier.id, tier.name, tier.multiplier)


async def locked_tier(conn: DbConnection, tiers: TierSet, member_id: int) -> TierBonus | None:
    """The member's tier read under their wallet lock (exact: upgrades take that lock too)."""
    if not tiers:
        return None
    held = (await member_tiers.member_tiers(conn, [member_id])).get(member_id)
    return bonus_of(tiers, held.tier_id if held else None)


def decision_for(
    purchase: PurchaseInput,
    basket: Basket,
    partner: partners.PartnerView | None,
    rules: Rules,
    tiers: TierSet = TierSet(),
    tier_of: dict[str, int] | None = None,
) -> tuple[ledger.EarnDecision | None, ledger.Decide | None]:
    """Exactly one of (decision, decide): decide when the points or the document depend on the
    member's state, read under their wallet lock in the earn's transaction — a cap per member in
    force at the purchase's occurredAt (what the member earned before it), a guarded promotion
    live (budget, per-member limit, first purchase, not seen), or promo codes (each is used, or
    refused, by `promo_codes.claim`; the promotions they unlock go to the engine, their statuses
    into the document, so a replay answers the same userErrors and uses nothing again).
    With tiers defined, the member's tier multiplies base points: read under the lock (decide),
    unless the caller read the batch's tiers up front (`tier_of`: member number -> tier id, the
    bulk path, set-wise).
    Everything else keeps the ledger's one-statement path."""
    at = purchase.occurred_at or clock.now()
    terms = terms_at(partner, rules, at)

    def decided(result: Result, claimed: promo_codes.ClaimResult | None = None) -> ledger.EarnDecision:
        return ledger.EarnDecision(
            result.points, purchases.document(purchase, basket, result, claimed), result.coalition_points
        )

    guarded = any(p.guarded for p in terms.promotions)
    tier_unknown = tier_of is None and multiplying(tiers)
    known_tier = bonus_of(tiers, tier_of.get(purchase.member_number)) if tier_of is not None else None
    if (terms.member_caps or guarded or purchase.promo_codes or tier_unknown) and partner is not None:
        found_partner = partner

        async def decide(conn: DbConnection, member_id: int) -> ledger.EarnDecision:
            claimed = None
            unlocked = purchase.unlocked
            if purchase.promo_codes:
                claimed = await promo_codes.claim(
                    conn,
                    member_id=member_id,
                    partner_id=found_partner.id,
                    order_id=purchase.order_id,
                    codes=purchase.promo_codes,
                    at=at,
                )
                unlocked = unlocked | claimed.unlocked
            hist, facts, limited = await locked_inputs(conn, member_id, found_partner, terms, at)
            tier = await locked_tier(conn, tiers, member_id) if tier_of is None else known_tier

            def run(excluded: frozenset[int]) -> Result:
                ctx = context(purchase, found_partner, at, facts=facts, excluded=excluded, unlocked=unlocked)
                return evaluate(basket, terms, hist, ctx, tier)

            result = await promotion_awards.settle(conn, run, limited, promotion_awards.reserve, undo=True)
            await promotion_awards.record_awards(
                conn, result, member_id=member_id, partner_id=found_partner.id, order_id=purchase.order_id
            )
            return decided(result, claimed)

        return None, decide
    return decided(evaluate(basket, terms, None, context(purchase, partner, at), known_tier)), None
