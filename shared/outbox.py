"""The transactional outbox: every change that others need to hear of writes an event row here
in the same transaction as the change, so an event exists exactly when its change committed
(never lost, never sent for a rolled-back change).

It lives in shared/ because every service writes events and only services/notifications, near
the top of the order of services, reads and delivers them. Writers never wait for delivery.

Rows are append-only but for two markers, one per consumer in services/notifications, each set
once that consumer has taken the event: `webhooks_dispatched_at` (fanned out to partners'
webhook deliveries) and `mail_dispatched_at` (turned into member mail, or found to need none).
A partial index per marker keeps the events still to take cheap to find, however long the
outbox grows. `id` orders events; `member_id` is the ordering key for per-member delivery order.
`partner_ids` is the audience among partners: a partner receives an event only when its id is
in there (the events about its own members and statements), admins' endpoints receive all.

A change made by one autocommit statement (the usual earn, a link made at the till) writes its
event inside that statement, as a data-modifying CTE into this table, so both commit together
and the hot path keeps its round trips. The event types and their payloads: docs/events.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, Text, func, insert, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared import clock
from shared.models import Base
from shared.sql import DbConnection


class EventType(StrEnum):
    """Event types, as partners' webhooks and the docs name them (docs/events.md). A payload's
    shape is versioned by `OutboxEvent.version`; adding a field keeps the version, removing or
    changing one bumps it."""

    POINTS_EARNED = "points.earned"
    POINTS_REDEEMED = "points.redeemed"
    POINTS_REVERSED = "points.reversed"
    POINTS_EXPIRED = "points.expired"
    POINTS_TRANSFERRED = "points.transferred"
    POINTS_DONATED = "points.donated"
    MEMBER_ENROLLED = "member.enrolled"
    MEMBER_LINKED = "member.linked"
    MEMBER_UNLINKED = "member.unlinked"
    TIER_CHANGED = "tier.changed"
    REFERRAL_REWARDED = "referral.rewarded"
    REWARD_REDEEMED = "reward.redeemed"
    SETTLEMENT_FINALIZED = "settlement.finalized"
    DISPUTE_OPENED = "dispute.opened"


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index(
            "ix_outbox_events_webhooks_pending", "id", postgresql_where=text("webhooks_dispatched_at IS NULL")
        ),
        Index("ix_outbox_events_mail_pending", "id", postgresql_where=text("mail_dispatched_at IS NULL")),
        Index("ix_outbox_events_member", "member_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    type: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    member_id: Mapped[int | None] = mapped_column(BigInteger)
    partner_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    webhooks_dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mail_dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Event:
    """One event to record. `data` must be JSON-able; Decimals become strings (money is never a
    float), datetimes ISO 8601 strings."""

    type: EventType
    data: Mapping[str, Any]
    member_id: int | None = None
    partner_ids: Sequence[int] = ()
    occurred_at: datetime | None = None
    version: int = 1
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | StrEnum):
        return str(value)
    raise TypeError(f"not JSON-able in an event: {type(value).__name__}")


def _no_floats(value: Any, path: str) -> None:
    if isinstance(value, float):
        raise TypeError(f"a float in an event at {path}: money is a Decimal, points an int")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _no_floats(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _no_floats(item, f"{path}[{index}]")


def encode(data: Mapping[str, Any]) -> str:
    """The payload as compact JSON; a float anywhere in it is a bug and raises TypeError."""
    _no_floats(data, "data")
    return json.dumps(data, default=_jsonable, separators=(",", ":"))


async def record_events(conn: DbConnection, events: Sequence[Event]) -> None:
    """Writes the events in the caller's transaction with one statement, whatever their number
    (bulk earning records a batch's events at once). Call it inside the transaction that makes
    the change: outside one, the event would commit even if the change later failed."""
    if not events:
        return
    now = clock.now()
    await conn.execute(
        "INSERT INTO outbox_events (event_id, type, version, occurred_at, member_id, partner_ids, data)"
        " SELECT e, t, v, o, m, CAST(p AS bigint[]), d FROM unnest("
        "$1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::bigint[], $6::text[], $7::jsonb[])"
        " AS u(e, t, v, o, m, p, d)",
        [e.event_id for e in events],
        [str(e.type) for e in events],
        [e.version for e in events],
        [e.occurred_at or now for e in events],
        [e.member_id for e in events],
        ["{" + ",".join(str(int(p)) for p in e.partner_ids) + "}" for e in events],
        [encode(e.data) for e in events],
    )


async def record_event(
    conn: DbConnection,
    type: EventType,
    data: Mapping[str, Any],
    *,
    member_id: int | None = None,
    partner_ids: Sequence[int] = (),
    occurred_at: datetime | None = None,
    version: int = 1,
) -> uuid.UUID:
    """One event, in the caller's transaction on an asyncpg connection; returns its event id."""
    event = Event(type, data, member_id, tuple(partner_ids), occurred_at, version)
    await record_events(conn, [event])
    return event.event_id


async def record_event_in_session(
    session: AsyncSession,
    type: EventType,
    data: Mapping[str, Any],
    *,
    member_id: int | None = None,
    partner_ids: Sequence[int] = (),
    occurred_at: datetime | None = None,
    version: int = 1,
) -> uuid.UUID:
    """The same for services that work on an SQLAlchemy session (written in its transaction)."""
    event_id = uuid.uuid4()
    await session.execute(
        insert(OutboxEvent).values(
            event_id=event_id,
            type=str(type),
            version=version,
            occurred_at=occurred_at or clock.now(),
            member_id=member_id,
            partner_ids=[int(p) for p in partner_ids],
            data=json.loads(encode(data)),
        )
    )
    return event_id
