"""The admin audit log: every action an admin takes, who took it and on what.

It lives in shared/ because every service with admin operations writes to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Text, func, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.access import Principal
from shared.models import Base


class AdminAuditEntry(Base):
    __tablename__ = "admin_audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    client_id: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text, index=True)
    target: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB)


async def record(
    session: AsyncSession,
    principal: Principal | None,
    action: str,
    target: str | None,
    details: dict[str, Any],
) -> None:
    """Written in the caller's transaction, so the log holds exactly what was committed."""
    await session.execute(
        insert(AdminAuditEntry).values(
            client_id=principal.client_id if principal else "cli",
            action=action,
            target=target,
            details=details,
        )
    )
