"""The admin audit log: every action an admin takes, who took it and on what.

It lives in shared/ because every service with admin operations writes to it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Text, func, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.access import Principal
from shared.models import Base
from shared.sql import DbConnection, Sql


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


RECORD_SQL = Sql(
    "INSERT INTO admin_audit_log (client_id, action, target, details)"
    " VALUES (:client, :action, :target, CAST(:details AS jsonb))"
)


async def record_on(
    conn: DbConnection,
    principal: Principal | None,
    action: str,
    target: str | None,
    details: dict[str, Any],
) -> None:
    """The same record for services that work on asyncpg connections (settlement)."""
    await RECORD_SQL.execute(
        conn,
        client=principal.client_id if principal else "cli",
        action=action,
        target=target,
        details=json.dumps(details, default=str),
    )
