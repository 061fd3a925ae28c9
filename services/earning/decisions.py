"""What one purchase earns, as the ledger is handed it: the points and the stored document decided
up front (`ledger.EarnDecision`), or — for a partner with a cap per member in force — a `decide`
function the ledger runs under the member's wallet lock, so the member's earnings in the period
are read exactly.

`recordPurchase`, `recordPurchases` and the CSV import all take their decisions here, so a purchase
earns the same whichever way it arrives (the twin-worlds tests pin it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.earning import cache, promo_codes, purchases
from services.earning.engine import Basket, MemberHistory, Terms, evaluate
from services.earning.purchases import PurchaseInput
from services.earning.rules import PartnerRules
from services.ledger import service as ledger
from services.partners import service as partners
from shared import clock, sql
from shared.database import Database
from shared.sql import DbConnection


async def partner_and_rules(
    db: Database, partner_id: int
) -> tuple[partners.PartnerView | None, PartnerRules]:
    """Both from the process's caches; a connection only when one of them misses."""
    partner = db.cache.get(("partner", partner_id))
    rules = cache.rules_cache(db).peek(partner_id)
    if partner is None or rules is None:
        async with sql.connection(db) as conn:
            partner = await partners.cached_partner(db, conn, partner_id)
            rules = await cache.rules_cache(db).rules(conn, partner_id)
    return partner, rules


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


def terms_at(partner: partners.PartnerView | None, rules: PartnerRules, at: datetime) -> Terms:
    """The partner's base terms and its rules in force at `at` (no partner: nothing is earned,
    and the ledger answers PARTNER_NOT_FOUND)."""
    return Terms(
        partner.earn_rate if partner else 0, partner.earn_rounding if partner else "FLOOR", rules.in_force(at)
    )


def decision_for(
    purchase: PurchaseInput, basket: Basket, partner: partners.PartnerView | None, rules: PartnerRules
) -> tuple[ledger.EarnDecision | None, ledger.Decide | None]:
    """Exactly one of (decision, decide): decide when the points or the document depend on the
    member's state, read under their wallet lock in the earn's transaction — a cap per member in
    force at the purchase's occurredAt (what the member earned before it), or promo codes (each is
    used, or refused, by `promo_codes.claim`; their statuses go into the document, so a replay
    answers the same userErrors and uses nothing again). Everything else keeps the ledger's
    one-statement path."""
    at = purchase.occurred_at or clock.now()
    terms = terms_at(partner, rules, at)

    if (terms.member_caps or purchase.promo_codes) and partner is not None:
        found_partner = partner

        async def decide(conn: DbConnection, member_id: int) -> ledger.EarnDecision:
            claimed = None
            if purchase.promo_codes:
                claimed = await promo_codes.claim(
                    conn,
                    member_id=member_id,
                    partner_id=found_partner.id,
                    order_id=purchase.order_id,
                    codes=purchase.promo_codes,
                    at=at,
                )
            past = await history(conn, member_id, found_partner, at) if terms.member_caps else None
            # claimed.unlocked goes to the engine's requires_code promotions once they land
            result = evaluate(basket, terms, past)
            return ledger.EarnDecision(result.points, purchases.document(purchase, basket, result, claimed))

        return None, decide
    result = evaluate(basket, terms)
    return ledger.EarnDecision(result.points, purchases.document(purchase, basket, result)), None
