"""The expiry policy: per lot by default; with ACTIVITY_EXTENDS, activity pushes every lot out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from services.ledger import policy
from shared import clock
from shared.audit_log import AdminAuditEntry
from shared.errors import DomainError, Forbidden
from tests.factories import ADMIN, earn, enroll, make_partner, redeem


async def _set(db, months: int, mode: str) -> None:
    await policy.update_policy(db, ADMIN, months=months, mode=mode)


async def _expiries(db, member_id: int) -> list:
    async with db.sessions() as session:
        rows = await session.execute(
            text("SELECT expires_at FROM lots WHERE member_id = :m ORDER BY id"), {"m": member_id}
        )
    return [r.expires_at for r in rows]


async def test_activity_extends_every_live_lot(db):
    shop = await make_partner(db)
    member = await enroll(db, shop)
    now = clock.now()
    await earn(db, shop, member.member_number, "10", occurred_at=now - timedelta(days=300))
    [first] = await _expiries(db, member.id)
    assert first == clock.add_months(now - timedelta(days=300), 24)  # per lot, the default
    await _set(db, 12, "ACTIVITY_EXTENDS")
    try:
        await earn(db, shop, member.member_number, "20")
        kept, new = await _expiries(db, member.id)
        assert kept == first  # activity never shortens a lot's life
        assert abs(new - clock.add_months(now, 12)) < timedelta(minutes=1)
        later = now + timedelta(days=100)
        clock.set_clock(lambda: later)
        try:
            assert (await redeem(db, shop, member.member_number, 5)).errors == []
        finally:
            clock.set_clock(None)
        expiries = await _expiries(db, member.id)
        assert all(abs(e - clock.add_months(later, 12)) < timedelta(minutes=1) for e in expiries)
    finally:
        await _set(db, 24, "PER_LOT")
    async with db.sessions() as session:
        actions = (
            await session.scalars(
                select(AdminAuditEntry.action).where(AdminAuditEntry.action == "expiry_policy.update")
            )
        ).all()
    assert len(actions) >= 2


async def test_only_admins_change_it_and_bad_values_are_named(db):
    shop = await make_partner(db)
    with pytest.raises(Forbidden):
        await policy.update_policy(db, shop.principal, months=12, mode="PER_LOT")
    with pytest.raises(DomainError) as caught:
        await policy.update_policy(db, ADMIN, months=0, mode="FOREVER")
    assert {e.field for e in caught.value.errors} == {"months", "mode"}
