"""Members' emails as other services may compare them (referrals: the same person referring
themselves under another member, or a person already a member enrolled anew), read in the
caller's session so the comparison belongs to the enrolment's transaction. Erased members have
no email left and are never matched."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.members.models import Member


async def emails_of(session: AsyncSession, member_ids: list[int]) -> dict[int, str | None]:
    """Member id -> their email, lower-cased (None: none given); erased and unknown ids absent."""
    rows = await session.execute(
        select(Member.id, func.lower(Member.email)).where(
            Member.id.in_(member_ids), Member.erased_at.is_(None)
        )
    )
    return {member_id: email for member_id, email in rows.all()}


async def email_taken_by_another(session: AsyncSession, email: str, member_id: int) -> bool:
    """Whether a member other than `member_id` (and not erased) has this email, case-insensitive."""
    found = await session.scalar(
        select(Member.id)
        .where(
            func.lower(Member.email) == email.lower(),
            Member.id != member_id,
            Member.erased_at.is_(None),
        )
        .limit(1)
    )
    return found is not None
