"""Referral test data, built through the services (the code read as the member reads it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.engagement import referral_bonuses, referrals
from services.members.service import MemberView
from shared import clock, sql
from shared.access import MEMBER_SCOPE, Principal
from shared.database import Database
from tests.factories import SeededPartner, unique


def member_principal(member: MemberView) -> Principal:
    return Principal(client_id="test-member-app", scopes=frozenset({MEMBER_SCOPE}), member_id=member.id)


async def code_of(db: Database, member: MemberView) -> str:
    return await referrals.referral_code(db, member_principal(member))


async def enroll_referred(
    db: Database,
    partner: SeededPartner,
    code: str | None,
    *,
    email: str | None = None,
    member_number: str | None = None,
    ref: str | None = None,
) -> MemberView:
    return await referrals.enroll_member(
        db,
        partner.principal,
        partner_customer_ref=ref or unique("ref"),
        email=email,
        member_number=member_number,
        referral_code=code,
    )


async def pay(db: Database, now: datetime | None = None, batch: int = 1000) -> referral_bonuses.BonusRound:
    """One batch of the referral-bonuses job at `now` (the application's clock by default)."""
    return await referral_bonuses.pay_referral_bonuses(db, now or clock.now(), batch)


async def rows(db: Database, query: str, *args: Any) -> list[dict[str, Any]]:
    async with sql.connection(db) as conn:
        return [dict(r) for r in await conn.fetch(query, *args)]


async def bonuses_for(db: Database, referred: MemberView) -> list[dict[str, Any]]:
    return await rows(db, "SELECT * FROM referral_bonuses WHERE referred_member_id = $1", referred.id)


async def referral_of(db: Database, referred: MemberView) -> dict[str, Any] | None:
    found = await rows(db, "SELECT * FROM referrals WHERE referred_member_id = $1", referred.id)
    return found[0] if found else None
