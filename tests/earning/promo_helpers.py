"""Promotions and promo codes for the promo-code tests.

`promotion` inserts the row straight into `promotions`, since some tests need one that has already
ended (which createPromotion refuses), then makes this process's promotions cache forget what it
held, as a change through the service would. Codes are made through the service's own `generate`.
"""

from __future__ import annotations

from datetime import datetime

from services.earning import promo_code_batches, promotion_cache
from shared.access import ADMIN_SCOPES, Principal
from shared.database import Database
from shared.sql import connection
from tests.factories import SeededPartner

ADMIN = Principal(client_id="test-admin", scopes=ADMIN_SCOPES)
BONUS = 50  # what a code-unlocked test promotion adds to a purchase


async def promotion(
    db: Database, partner: SeededPartner | None, *, ends_at: datetime | None = None, name: str = "promo"
) -> int:
    """A live bonus-points promotion that requires a code (partner None: a coalition promotion)."""
    async with connection(db) as conn:
        found = await conn.fetchval(
            "INSERT INTO promotions (partner_id, name, starts_at, ends_at, bonus_points, requires_code)"
            " VALUES ($1, $2, now() - interval '1 day', $3, $4, true) RETURNING id",
            partner.id if partner else None,
            name,
            ends_at,
            BONUS,
        )
    promotion_cache.promotions_cache(db).on_reconnect()
    return found


async def codes(
    db: Database,
    partner: SeededPartner | None,
    promotion_id: int,
    count: int = 1,
    **terms,
) -> list[str]:
    principal = partner.principal if partner else ADMIN
    made = await promo_code_batches.generate(
        db, principal, promo_code_batches.BatchTerms(promotion_id=promotion_id, count=count, **terms)
    )
    assert made.codes is not None
    return made.codes


async def uses(db: Database, code: str) -> int:
    async with connection(db) as conn:
        return await conn.fetchval("SELECT uses FROM promo_codes WHERE code = $1", code)
