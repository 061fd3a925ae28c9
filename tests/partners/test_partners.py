"""Onboarding partners: validation, uniqueness, contracts, the audit log."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from services.partners import service as partners
from shared import clock, sql
from shared.audit_log import AdminAuditEntry
from shared.errors import DomainError, Forbidden
from tests.factories import ADMIN, make_partner, unique


async def test_a_partner_comes_with_a_contract_accounts_and_an_audit_entry(db):
    partner = await make_partner(db, redeem_price="0.0125", issue_price="0.02")
    async with sql.connection(db) as conn:
        contract = await partners.contract_at(conn, partner.id, clock.now())
    async with db.sessions() as session:
        entries = (
            await session.scalars(
                select(AdminAuditEntry).where(AdminAuditEntry.target == f"partner:{partner.id}")
            )
        ).all()
    assert contract.redeem_price == Decimal("0.0125") and contract.issue_price == Decimal("0.02")
    assert contract.currency == "EUR"
    assert [e.action for e in entries] == ["partner.create"]
    assert entries[0].client_id == ADMIN.client_id
    assert "client_secret" not in str(entries[0].details)


async def test_names_are_unique(db):
    name = unique("Brand")
    await make_partner(db, name=name)
    with pytest.raises(DomainError) as caught:
        await make_partner(db, name=name)
    assert caught.value.errors[0].code == "NAME_TAKEN"


async def test_a_name_of_the_longest_allowed_length_is_accepted(db):
    """Its backend client's label is cut to fit identity's limit (it once failed as TOO_LONG)."""
    name = unique("Brand") + "x" * (partners.MAX_NAME - len(unique("Brand")))
    assert len(name) == partners.MAX_NAME
    partner = await make_partner(db, name=name)
    async with sql.connection(db) as conn:
        label = await conn.fetchval("SELECT name FROM oauth_clients WHERE partner_id = $1", partner.id)
    assert label.endswith(" backend") and label.startswith(name[:150]) and len(label) <= 200


async def test_partners_cannot_onboard_partners(db):
    cafe = await make_partner(db)
    with pytest.raises(Forbidden):
        await partners.create_partner(
            db,
            cafe.principal,
            name=unique("x"),
            currency="EUR",
            issue_price=Decimal(1),
            redeem_price=Decimal(1),
            earn_rate=Decimal(1),
        )
    with pytest.raises(Forbidden):
        await partners.list_partners(db, cafe.principal, first=10, after=None)
