"""GraphQL for partners' webhooks: endpoints, their secrets, deliveries and redelivery.

How deliveries are signed and retried is in services/notifications/webhook_sender.py and the
README ("Webhooks"); the event types and payloads in docs/events.md.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Annotated

import strawberry

from services.notifications import webhook_endpoints as endpoints
from services.notifications.webhook_models import DeliveryStatus, EndpointStatus
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import (
    After,
    Connection,
    First,
    GraphQLInfo,
    Node,
    UserError,
    graphql_enum,
    user_errors,
)
from shared.ids import require_global_id, to_global_id
from shared.operations import ANY_TOKEN, INPUT, PAGE_CODES, field, mutation, partner_or_admin
from shared.outbox import EventType

ACCESS = partner_or_admin(
    "webhooks:write",
    "admin:partners",
    "its own endpoints, hearing about its own members and statements",
    "the coalition's own endpoints, hearing every event; an admin lists every endpoint",
)

graphql_enum(
    EndpointStatus,
    name="WebhookEndpointStatus",
    description="Whether an endpoint is being sent events.",
    values={
        EndpointStatus.ACTIVE: "New events are fanned out to it and what it is owed is sent.",
        EndpointStatus.DISABLED: "No new events are fanned out to it; what it was already owed waits, in"
        " order, until it is ACTIVE again (retry deadlines keep running).",
    },
)
graphql_enum(
    DeliveryStatus,
    name="WebhookDeliveryStatus",
    description="Where a delivery of one event to one endpoint stands.",
    values={
        DeliveryStatus.PENDING: "To be sent, or sent again after a failure (nextAttemptAt).",
        DeliveryStatus.SUCCEEDED: "The endpoint answered 2xx.",
        DeliveryStatus.DEAD: "No 2xx until retryUntil (24 hours of retries with backoff), or the endpoint"
        " was deleted; redeliverWebhook sends it again.",
    },
)


@strawberry.type(description="Where the coalition POSTs the events a partner subscribed to, signed.")
class WebhookEndpoint(Node):
    url: str = strawberry.field(description="The receiver's URL (https; http://127.0.0.1 in development).")
    event_types: list[str] = strawberry.field(
        description="The event types it is sent (docs/events.md), e.g. points.earned, member.linked."
    )
    status: EndpointStatus = strawberry.field(description="ACTIVE or DISABLED.")
    partner_id: strawberry.ID | None = strawberry.field(
        description="The Partner (global ID) it belongs to; null for the coalition's own endpoints."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="After rotateWebhookSecret: until when the previous secret still signs too (a"
        " second v1= in Coalition-Signature); null when only one secret signs."
    )

    @classmethod
    def of(cls, view: endpoints.EndpointView) -> WebhookEndpoint:
        return cls(
            id=strawberry.ID(to_global_id("WebhookEndpoint", view.id)),
            url=view.url,
            event_types=list(view.event_types),
            status=EndpointStatus(view.status),
            partner_id=None
            if view.partner_id is None
            else strawberry.ID(to_global_id("Partner", view.partner_id)),
            created_at=view.created_at,
            previous_secret_expires_at=view.previous_secret_expires_at,
        )


@strawberry.type(description="One event owed to one endpoint, and how sending it went.")
class WebhookDelivery(Node):
    endpoint_id: strawberry.ID = strawberry.field(description="The WebhookEndpoint (global ID).")
    event_id: str = strawberry.field(
        description="The event's id (a UUID): the Coalition-Event-Id header and the body's id; the same"
        " on every attempt and redelivery, so receivers de-duplicate on it."
    )
    event_type: str = strawberry.field(description="The event's type, e.g. points.earned.")
    status: DeliveryStatus = strawberry.field(description="PENDING, SUCCEEDED or DEAD.")
    attempts: int = strawberry.field(description="How many times it was sent.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When it is sent next; null unless PENDING."
    )
    retry_until: datetime = strawberry.field(description="Failures are retried until then, then it is DEAD.")
    last_status_code: int | None = strawberry.field(
        description="The HTTP status of the last answer; null when none came (timeout, refused)."
    )
    last_error: str | None = strawberry.field(description="Why the last attempt failed; null if it did not.")
    created_at: datetime = strawberry.field(description="When the event was fanned out to the endpoint.")
    delivered_at: datetime | None = strawberry.field(description="When the endpoint last answered 2xx.")

    @classmethod
    def of(cls, view: endpoints.DeliveryView) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(to_global_id("WebhookDelivery", view.id)),
            endpoint_id=strawberry.ID(to_global_id("WebhookEndpoint", view.endpoint_id)),
            event_id=view.event_id,
            event_type=view.event_type,
            status=DeliveryStatus(view.status),
            attempts=view.attempts,
            next_attempt_at=view.next_attempt_at,
            retry_until=view.retry_until,
            last_status_code=view.last_status_code,
            last_error=view.last_error,
            created_at=view.created_at,
            delivered_at=view.delivered_at,
        )


URL = (
    "Absolute https URL, at most 2,000 characters, no credentials or #fragment (http only for"
    " 127.0.0.1/localhost in development)."
)
EVENT_TYPES = "One or more event types (webhookEventTypes lists them; docs/events.md describes each)."


@strawberry.input(description="A new webhook endpoint.")
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description=URL)
    event_types: list[str] = strawberry.field(description=EVENT_TYPES)


@strawberry.type(description="The answer to createWebhookEndpoint.")
class CreateWebhookEndpointPayload:
    endpoint: WebhookEndpoint | None = strawberry.field(default=None, description="Null on userErrors.")
    secret: str | None = strawberry.field(
        default=None,
        description="The signing secret (whsec_…), shown this once: keep it to verify Coalition-Signature.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing changed.")


@strawberry.input(description="The fields of an endpoint to change; a field left out stays as it is.")
class UpdateWebhookEndpointInput:
    endpoint_id: strawberry.ID = strawberry.field(description="The WebhookEndpoint's global ID.")
    url: str | None = strawberry.field(default=None, description=URL)
    event_types: list[str] | None = strawberry.field(default=None, description=EVENT_TYPES)
    status: EndpointStatus | None = strawberry.field(default=None, description="ACTIVE or DISABLED.")


@strawberry.input(description="The endpoint to delete.")
class DeleteWebhookEndpointInput:
    endpoint_id: strawberry.ID = strawberry.field(description="The WebhookEndpoint's global ID.")


@strawberry.type(description="The answer to updateWebhookEndpoint and deleteWebhookEndpoint.")
class WebhookEndpointPayload:
    endpoint: WebhookEndpoint | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing changed.")


@strawberry.input(description="The endpoint whose secret to replace.")
class RotateWebhookSecretInput:
    endpoint_id: strawberry.ID = strawberry.field(description="The WebhookEndpoint's global ID.")
    overlap: timedelta | None = strawberry.field(
        default=None,
        description="How long the old secret keeps signing too (0 to P7D; default PT24H).",
    )


@strawberry.type(description="The answer to rotateWebhookSecret.")
class RotateWebhookSecretPayload:
    endpoint: WebhookEndpoint | None = strawberry.field(default=None, description="Null on userErrors.")
    secret: str | None = strawberry.field(default=None, description="The new secret, shown this once.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing changed.")


@strawberry.input(description="The delivery to send again.")
class RedeliverWebhookInput:
    delivery_id: strawberry.ID = strawberry.field(description="The WebhookDelivery's global ID.")


@strawberry.type(description="The answer to redeliverWebhook.")
class RedeliverWebhookPayload:
    delivery: WebhookDelivery | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing changed.")


TERMS_CODES = (UserErrorCode.INVALID_URL, UserErrorCode.UNKNOWN_EVENT_TYPE)
ENDPOINT_CODES = (UserErrorCode.INVALID_ID, UserErrorCode.WEBHOOK_ENDPOINT_NOT_FOUND)


def _endpoint_id(value: strawberry.ID) -> int:
    return require_global_id(value, "WebhookEndpoint", "endpointId")


async def _endpoint(operation: Awaitable[endpoints.EndpointView]) -> WebhookEndpointPayload:
    try:
        view = await operation
    except DomainError as exc:
        return WebhookEndpointPayload(user_errors=user_errors(exc.errors))
    return WebhookEndpointPayload(endpoint=WebhookEndpoint.of(view))


@strawberry.type
class WebhooksQuery:
    @field("Every event type a webhook endpoint can subscribe to (docs/events.md).", access=ANY_TOKEN)
    def webhook_event_types(self) -> list[str]:
        return [str(t) for t in EventType]

    @field("The caller's webhook endpoints, oldest first.", access=ACCESS, codes=PAGE_CODES)
    async def webhook_endpoints(
        self, info: GraphQLInfo, first: First = None, after: After = None
    ) -> Connection[WebhookEndpoint]:
        page = await endpoints.list_endpoints(
            info.context.db, info.context.principal, first=first, after=after
        )
        return Connection.of(page, WebhookEndpoint.of)

    @field(
        "An endpoint's deliveries, newest first: what was sent, what failed and why.",
        access=ACCESS,
        codes=(*ENDPOINT_CODES, *PAGE_CODES),
    )
    async def webhook_deliveries(
        self,
        info: GraphQLInfo,
        endpoint_id: Annotated[strawberry.ID, strawberry.argument(description="The WebhookEndpoint.")],
        status: Annotated[
            DeliveryStatus | None, strawberry.argument(description="Only deliveries in this status.")
        ] = None,
        first: First = None,
        after: After = None,
    ) -> Connection[WebhookDelivery]:
        endpoints.owner_of(info.context.principal)  # a member's token is refused before the id is read
        page = await endpoints.list_deliveries(
            info.context.db,
            info.context.principal,
            _endpoint_id(endpoint_id),
            status=status,
            first=first,
            after=after,
        )
        return Connection.of(page, WebhookDelivery.of)


@strawberry.type
class WebhooksMutation:
    @mutation(
        "A webhook endpoint: the worker POSTs it every later event of the types given that the caller"
        " may hear, signed with the secret this returns once (Coalition-Signature; README, Webhooks).",
        access=ACCESS,
        codes=(*TERMS_CODES, UserErrorCode.ENDPOINT_LIMIT_REACHED),
    )
    async def create_webhook_endpoint(
        self, info: GraphQLInfo, input: Annotated[CreateWebhookEndpointInput, INPUT]
    ) -> CreateWebhookEndpointPayload:
        try:
            created = await endpoints.create_endpoint(
                info.context.db, info.context.principal, url=input.url, event_types=input.event_types
            )
        except DomainError as exc:
            return CreateWebhookEndpointPayload(user_errors=user_errors(exc.errors))
        return CreateWebhookEndpointPayload(
            endpoint=WebhookEndpoint.of(created.endpoint), secret=created.secret
        )

    @mutation(
        "Change an endpoint's URL, event types or status (DISABLED pauses it); the rest stays.",
        access=ACCESS,
        codes=(*ENDPOINT_CODES, *TERMS_CODES),
    )
    async def update_webhook_endpoint(
        self, info: GraphQLInfo, input: Annotated[UpdateWebhookEndpointInput, INPUT]
    ) -> WebhookEndpointPayload:
        try:
            endpoint_id = _endpoint_id(input.endpoint_id)
        except DomainError as exc:
            return WebhookEndpointPayload(user_errors=user_errors(exc.errors))
        return await _endpoint(
            endpoints.update_endpoint(
                info.context.db,
                info.context.principal,
                endpoint_id,
                url=input.url,
                event_types=input.event_types,
                status=input.status,
            )
        )

    @mutation(
        "Delete an endpoint for good: nothing more is sent to it, and what it was owed is DEAD.",
        access=ACCESS,
        codes=ENDPOINT_CODES,
    )
    async def delete_webhook_endpoint(
        self, info: GraphQLInfo, input: Annotated[DeleteWebhookEndpointInput, INPUT]
    ) -> WebhookEndpointPayload:
        try:
            endpoint_id = _endpoint_id(input.endpoint_id)
        except DomainError as exc:
            return WebhookEndpointPayload(user_errors=user_errors(exc.errors))
        return await _endpoint(
            endpoints.delete_endpoint(info.context.db, info.context.principal, endpoint_id)
        )

    @mutation(
        "A new signing secret, returned once; the old one keeps signing too for `overlap`, so a"
        " receiver switches without refusing a delivery.",
        access=ACCESS,
        codes=(*ENDPOINT_CODES, UserErrorCode.INVALID_DURATION),
    )
    async def rotate_webhook_secret(
        self, info: GraphQLInfo, input: Annotated[RotateWebhookSecretInput, INPUT]
    ) -> RotateWebhookSecretPayload:
        try:
            rotated = await endpoints.rotate_secret(
                info.context.db, info.context.principal, _endpoint_id(input.endpoint_id), input.overlap
            )
        except DomainError as exc:
            return RotateWebhookSecretPayload(user_errors=user_errors(exc.errors))
        return RotateWebhookSecretPayload(
            endpoint=WebhookEndpoint.of(rotated.endpoint), secret=rotated.secret
        )

    @mutation(
        "Send a delivery again, with the same event id: a DEAD one gets a new day of retries, a"
        " SUCCEEDED one goes once more, a PENDING one now.",
        access=ACCESS,
        codes=(UserErrorCode.INVALID_ID, UserErrorCode.WEBHOOK_DELIVERY_NOT_FOUND),
    )
    async def redeliver_webhook(
        self, info: GraphQLInfo, input: Annotated[RedeliverWebhookInput, INPUT]
    ) -> RedeliverWebhookPayload:
        try:
            delivery_id = require_global_id(input.delivery_id, "WebhookDelivery", "deliveryId")
            view = await endpoints.redeliver(info.context.db, info.context.principal, delivery_id)
        except DomainError as exc:
            return RedeliverWebhookPayload(user_errors=user_errors(exc.errors))
        return RedeliverWebhookPayload(delivery=WebhookDelivery.of(view))
