"""Partners' webhook endpoints and the deliveries owed to them.

An endpoint belongs to a partner (or, with no partner, to the coalition's admins, who hear every
event); it names the event types it wants. Its signing secret is stored sealed (Fernet, the key
encryption key the signing keys use): the partner sees it once, at creation or rotation, and the
worker unseals it to sign. During a rotation's overlap both secrets sign (two `v1=` in the
header), so a receiver can switch at its own pace.

A delivery is one event owed to one endpoint: `(endpoint_id, event_id)` is unique, so the fan-out
(`webhook_fanout.py`) can never owe an event twice, however many workers run it. It is PENDING
until the receiver answers 2xx (SUCCEEDED) or the retries run out at `retry_until` (DEAD);
`redeliverWebhook` makes a delivery PENDING again with the same event id. `next_attempt_at` is
both the backoff and the lease: a worker that claims a delivery pushes it a lease ahead, so a
worker killed mid-send leaves it to be sent again (at least once) when the lease ends.
`ordering_key` is the member the event is about (or the event's own negative outbox id when it is
about no member): deliveries of one key to one endpoint go strictly in outbox order.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class EndpointStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"  # receives new events and is sent what it is owed
    DISABLED = "DISABLED"  # owed events wait (and keep their place) until it is enabled again


class DeliveryStatus(enum.StrEnum):
    PENDING = "PENDING"  # to send (again, from next_attempt_at)
    SUCCEEDED = "SUCCEEDED"  # the receiver answered 2xx
    DEAD = "DEAD"  # retried until retry_until without a 2xx; redeliverWebhook revives it


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_partner", "partner_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    partner_id: Mapped[int | None] = mapped_column(BigInteger)  # null: an admins' endpoint
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(Text))
    status: Mapped[str] = mapped_column(Text, server_default=EndpointStatus.ACTIVE.value)
    secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(Text)  # the OAuth client that created it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        # The heads of the queues: per endpoint and ordering key, the lowest outbox id still owed.
        Index(
            "ix_webhook_deliveries_queue",
            "endpoint_id",
            "ordering_key",
            "outbox_id",
            postgresql_where=text("status = 'PENDING'"),
        ),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(BigInteger)
    outbox_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event_type: Mapped[str] = mapped_column(Text)
    ordering_key: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text, server_default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retry_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
