"""The partners' read contract: the view settlement prices by instead of the contracts table."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from services.partners import service as partners
from services.partners.views import PARTNER_CONTRACT_TERMS, VIEWS
from shared import clock, sql
from tests.factories import ADMIN, make_partner
from tests.view_contract import columns, migrated_matches_owner

TZ = "timestamp with time zone"


async def test_partner_contract_terms_columns(db):
    assert await columns(db, PARTNER_CONTRACT_TERMS.name) == [
        ("partner_id", "bigint"),
        ("effective_from", TZ),
        ("effective_to", TZ),
        ("currency", "text"),
        ("issue_price", "numeric"),
        ("redeem_price", "numeric"),
        ("issue_fee_per_point", "numeric"),
        ("breakage_share", "numeric"),
    ]


async def test_the_migrated_views_are_the_ones_partners_define(db):
    for view in VIEWS:
        assert await migrated_matches_owner(db, view), f"{view.name} changed without a migration"


async def test_each_version_is_in_force_until_the_next_one(db):
    partner = await make_partner(db, redeem_price="0.008")
    later = clock.now().replace(microsecond=0) + timedelta(days=3)
    await partners.update_contract(
        db,
        ADMIN,
        partner_id=partner.id,
        effective_from=later,
        issue_price=Decimal("0.01"),
        redeem_price=Decimal("0.009"),
        issue_fee_per_point=Decimal(0),
        breakage_share=Decimal(0),
    )
    async with sql.connection(db) as conn:
        rows = await conn.fetch(
            "SELECT effective_from, effective_to = 'infinity' AS open, effective_to, redeem_price"
            " FROM partner_contract_terms WHERE partner_id = $1 ORDER BY effective_from",
            partner.id,
        )
    first, second = rows
    assert (first["effective_to"], first["open"], first["redeem_price"]) == (later, False, Decimal("0.008"))
    assert (second["effective_from"], second["open"], second["redeem_price"]) == (
        later,
        True,
        Decimal("0.009"),
    )
