"""Partners' webhook endpoints: create, list, change, delete, rotate the secret; their deliveries.

A partner manages its own endpoints with the scope `webhooks:write`; another partner's endpoint
answers WEBHOOK_ENDPOINT_NOT_FOUND, exactly like one that does not exist. Coalition admins
(`admin:partners`) may create endpoints of the coalition's own, which hear every event, and see
every endpoint.

Where deliveries may go: an absolute https URL with no credentials and no fragment; in
production never an IP literal of a private, loopback or link-local network, nor `localhost`
(a partner must not make our worker call our own network). In development (COALITION_ENV) http is
allowed for the loopback host, so a receiver on a laptop works.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications import webhook_signing as signing
from services.notifications.webhook_models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator
from shared.outbox import EventType
from shared.pagination import Page, decode_cursor, make_page, page_size
from shared.settings import get_settings

MAX_URL = 2_000
MAX_ENDPOINTS = 10  # per partner, deleted ones not counted
MAX_OVERLAP = timedelta(days=7)
DEFAULT_OVERLAP = timedelta(hours=24)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class EndpointView:
    id: int
    partner_id: int | None
    url: str
    event_types: tuple[str, ...]
    status: str
    created_at: datetime
    previous_secret_expires_at: datetime | None


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: EndpointView
    secret: str  # shown once: only its sealed form is stored


@dataclass(frozen=True)
class DeliveryView:
    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None  # None once it is not PENDING
    retry_until: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def _view(row: WebhookEndpoint, now: datetime) -> EndpointView:
    overlap = row.previous_expires_at if row.previous_expires_at and row.previous_expires_at > now else None
    return EndpointView(
        id=row.id,
        partner_id=row.partner_id,
        url=row.url,
        event_types=tuple(row.event_types),
        status=row.status,
        created_at=row.created_at,
        previous_secret_expires_at=overlap,
    )


def delivery_view(row: WebhookDelivery) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=str(row.event_id),
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == DeliveryStatus.PENDING else None,
        retry_until=row.retry_until,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def url_problem(url: str, *, production: bool) -> str | None:
    """Why deliveries cannot go to `url`, in words for the caller; None when they can."""
    if len(url) > MAX_URL:
        return f"url must be at most {MAX_URL} characters"
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        return "url is not a valid URL"
    del port
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "url must be an absolute https:// URL"
    if parts.username is not None or parts.password is not None:
        return "url must not carry credentials (user:password@); deliveries are signed instead"
    if parts.fragment:
        return "url must not have a #fragment"
    host = parts.hostname.lower()
    if production:
        if parts.scheme != "https":
            return "url must be https in production"
        if host == "localhost" or host.endswith(".localhost") or _private_ip(host):
            return "url must not point at a private, loopback or link-local address in production"
    elif parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        return "url must be https (http only for 127.0.0.1 or localhost, in development)"
    return None


def _private_ip(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def _check_terms(v: Validator, url: str | None, event_types: Sequence[str] | None) -> None:
    if url is not None:
        problem = url_problem(url, production=get_settings().production)
        if problem is not None:
            v.add("url", UserErrorCode.INVALID_URL, problem)
    if event_types is not None:
        known = {str(t) for t in EventType}
        unknown = sorted(set(event_types) - known)
        if not event_types:
            v.add("eventTypes", UserErrorCode.UNKNOWN_EVENT_TYPE, "eventTypes must name at least one type")
        elif unknown:
            v.add(
                "eventTypes",
                UserErrorCode.UNKNOWN_EVENT_TYPE,
                f"unknown event types {unknown}; known: {', '.join(sorted(known))}",
            )


def owner_of(principal: Principal) -> int | None:
    """The partner whose endpoints the caller manages (None: the coalition's own, for admins);
    refuses (FORBIDDEN) whoever may manage none, before any argument is looked at."""
    if principal.is_admin:
        principal.require_admin("admin:partners")
        return None
    return principal.require_partner("webhooks:write")


async def create_endpoint(
    db: Database, principal: Principal, *, url: str, event_types: Sequence[str]
) -> CreatedEndpoint:
    partner_id = owner_of(principal)
    v = Validator()
    _check_terms(v, url, event_types)
    v.raise_if_any()
    secret = signing.new_secret()
    async with db.sessions() as session, session.begin():
        if partner_id is not None:
            await session.execute(select(func.pg_advisory_xact_lock(7_500_000_000 + partner_id)))
            count = await session.scalar(
                select(func.count())
                .select_from(WebhookEndpoint)
                .where(WebhookEndpoint.partner_id == partner_id, WebhookEndpoint.deleted_at.is_(None))
            )
            if (count or 0) >= MAX_ENDPOINTS:
                raise DomainError.single(
                    UserErrorCode.ENDPOINT_LIMIT_REACHED,
                    f"a partner may have at most {MAX_ENDPOINTS} webhook endpoints",
                    "url",
                )
        row = WebhookEndpoint(
            partner_id=partner_id,
            url=url.strip(),
            event_types=sorted(set(event_types)),
            status=EndpointStatus.ACTIVE.value,
            secret_sealed=signing.seal(secret),
            created_by=principal.client_id,
        )
        session.add(row)
        await session.flush()
        await session.refresh(row)
        return CreatedEndpoint(_view(row, clock.now()), secret)


async def _own_endpoint(session: AsyncSession, principal: Principal, endpoint_id: int) -> WebhookEndpoint:
    partner_id = owner_of(principal)
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.deleted_at.is_(None)
    )
    if partner_id is not None:
        stmt = stmt.where(WebhookEndpoint.partner_id == partner_id)
    row = await session.scalar(stmt.with_for_update())
    if row is None:
        raise DomainError.single(
            UserErrorCode.WEBHOOK_ENDPOINT_NOT_FOUND, "no such webhook endpoint", "endpointId"
        )
    return row


async def update_endpoint(
    db: Database,
    principal: Principal,
    endpoint_id: int,
    *,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    status: EndpointStatus | None = None,
) -> EndpointView:
    """Changes what is given. A DISABLED endpoint is fanned out no new events, and what it is
    still owed waits, in order, until it is ACTIVE again (its retry deadlines keep running)."""
    v = Validator()
    _check_terms(v, url, event_types)
    v.raise_if_any()
    async with db.sessions() as session, session.begin():
        row = await _own_endpoint(session, principal, endpoint_id)
        if url is not None:
            row.url = url.strip()
        if event_types is not None:
            row.event_types = sorted(set(event_types))
        if status is not None:
            row.status = status.value
        await session.flush()
        return _view(row, clock.now())


async def delete_endpoint(db: Database, principal: Principal, endpoint_id: int) -> EndpointView:
    """Deleted for good: nothing more is fanned out or sent to it; what it was owed is DEAD."""
    now = clock.now()
    async with db.sessions() as session, session.begin():
        row = await _own_endpoint(session, principal, endpoint_id)
        row.deleted_at = now
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == row.id, WebhookDelivery.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.DEAD.value, last_error="the endpoint was deleted")
        )
        await session.flush()
        return _view(row, now)


async def rotate_secret(
    db: Database, principal: Principal, endpoint_id: int, overlap: timedelta | None = None
) -> CreatedEndpoint:
    """A new secret, shown once; the old one keeps signing too for `overlap` (default 24 hours,
    at most 7 days, 0 to stop it at once), so receivers switch without losing a delivery."""
    overlap = DEFAULT_OVERLAP if overlap is None else overlap
    v = Validator()
    v.check(
        timedelta(0) <= overlap <= MAX_OVERLAP,
        "overlap",
        UserErrorCode.INVALID_DURATION,
        "overlap must be between 0 and 7 days",
    )
    v.raise_if_any()
    secret = signing.new_secret()
    now = clock.now()
    async with db.sessions() as session, session.begin():
        row = await _own_endpoint(session, principal, endpoint_id)
        if overlap > timedelta(0):
            row.previous_secret_sealed, row.previous_expires_at = row.secret_sealed, now + overlap
        else:
            row.previous_secret_sealed, row.previous_expires_at = None, None
        row.secret_sealed = signing.seal(secret)
        await session.flush()
        return CreatedEndpoint(_view(row, now), secret)


async def list_endpoints(
    db: Database, principal: Principal, *, first: int | None, after: str | None
) -> Page[EndpointView]:
    """A partner's own endpoints (an admin's: every endpoint), oldest first; deleted ones never."""
    partner_id = owner_of(principal)
    size = page_size(first)
    stmt = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.id)
        .limit(size + 1)
    )
    if partner_id is not None:
        stmt = stmt.where(WebhookEndpoint.partner_id == partner_id)
    position = decode_cursor(after)
    if position is not None:
        stmt = stmt.where(WebhookEndpoint.id > position)
    now = clock.now()
    async with db.sessions() as session:
        rows = [_view(r, now) for r in (await session.scalars(stmt)).all()]
    return make_page(rows, size, lambda r: r.id)


async def list_deliveries(
    db: Database,
    principal: Principal,
    endpoint_id: int,
    *,
    status: DeliveryStatus | None,
    first: int | None,
    after: str | None,
) -> Page[DeliveryView]:
    """An endpoint's deliveries, newest first."""
    size = page_size(first)
    async with db.sessions() as session:
        endpoint = await _own_endpoint(session, principal, endpoint_id)
        stmt = (
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(size + 1)
        )
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status.value)
        position = decode_cursor(after)
        if position is not None:
            stmt = stmt.where(WebhookDelivery.id < position)
        rows = [delivery_view(r) for r in (await session.scalars(stmt)).all()]
    return make_page(rows, size, lambda r: r.id)


async def redeliver(db: Database, principal: Principal, delivery_id: int) -> DeliveryView:
    """Sends a delivery again, with the same event id (receivers de-duplicate on it): a DEAD one
    gets a fresh retry window, a SUCCEEDED one is sent once more (a receiver that lost it), a
    PENDING one is tried now. It keeps its place in its member's order."""
    partner_id = owner_of(principal)
    now = clock.now()
    async with db.sessions() as session, session.begin():
        stmt = (
            select(WebhookDelivery)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id == delivery_id, WebhookEndpoint.deleted_at.is_(None))
        )
        if partner_id is not None:
            stmt = stmt.where(WebhookEndpoint.partner_id == partner_id)
        row = await session.scalar(stmt.with_for_update(of=WebhookDelivery))
        if row is None:
            raise DomainError.single(
                UserErrorCode.WEBHOOK_DELIVERY_NOT_FOUND, "no such webhook delivery", "deliveryId"
            )
        row.status = DeliveryStatus.PENDING.value
        row.next_attempt_at = now
        row.retry_until = max(row.retry_until, now + timedelta(hours=get_settings().webhook_retry_hours))
        await session.flush()
        return delivery_view(row)
