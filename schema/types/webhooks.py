"""Webhook endpoints of the account and their delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import Private

from domain.enums import WebhookDeliveryStatus, WebhookEventType
from domain.models import WebhookDelivery as WebhookDeliveryModel
from domain.models import WebhookEndpoint as WebhookEndpointModel
from domain.principal import Principal
from domain.reads import webhooks
from schema.errors import refusals_as_errors
from schema.fields import object_id, resolver
from schema.types.pagination import (
    AfterArgument,
    Connection,
    Edge,
    given_text,
    page_size,
    specialised,
)

DELIVERIES_PAGE_DEFAULT = 20


@strawberry.type(description="One event owed to one endpoint, with its attempts.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="Opaque identifier.")
    event_id: str = strawberry.field(
        description="The webhook-id header: the same on every attempt."
    )
    event_type: WebhookEventType = strawberry.field(description="The event's type.")
    status: WebhookDeliveryStatus = strawberry.field(description="Where it stands.")
    attempts: int = strawberry.field(description="Attempts made so far.")
    last_attempt_at: datetime | None = strawberry.field(description="When it was last tried.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When it will be tried next; null once it succeeded or failed."
    )
    last_response_status: int | None = strawberry.field(
        description="HTTP status of the last attempt; null when it got none (timeout, refused "
        "connection)."
    )
    last_error: str | None = strawberry.field(description="Why the last attempt failed.")
    created_at: datetime = strawberry.field(description="When the event was queued for it.")

    @classmethod
    def from_model(cls, model: WebhookDeliveryModel) -> WebhookDelivery:
        return cls(
            id=object_id(model.id),
            event_id=model.event_id,
            event_type=WebhookEventType(model.event.event_type),
            status=WebhookDeliveryStatus(model.status),
            attempts=model.attempts,
            last_attempt_at=model.last_attempt_at,
            next_attempt_at=model.next_attempt_at,
            last_response_status=model.last_response_status,
            last_error=model.last_error,
            created_at=model.created_at,
        )


@specialised(
    "A delivery with its position in the log.",
    node="The delivery.",
    cursor="Opaque position of this delivery in the log.",
)
class WebhookDeliveryEdge(Edge[WebhookDelivery]):
    pass


@specialised(
    "One page of an endpoint's deliveries, newest first.",
    edges="The deliveries of this page.",
    total_count="All deliveries of the endpoint.",
)
class WebhookDeliveryConnection(Connection[WebhookDeliveryEdge]):
    pass


@strawberry.type(description="Where the account's events are POSTed (Standard Webhooks).")
class WebhookEndpoint:
    id: strawberry.ID = strawberry.field(description="Opaque identifier.")
    url: str = strawberry.field(description="Where events are POSTed.")
    description: str | None = strawberry.field(description="A note to recognise it by.")
    event_types: list[WebhookEventType] = strawberry.field(description="Empty: every event type.")
    enabled: bool = strawberry.field(description="False: nothing is sent to it.")
    disabled_reason: str | None = strawberry.field(
        description="Why it was disabled (410 Gone, failing for three days, an administrator); "
        "null while enabled."
    )
    created_at: datetime = strawberry.field(description="When it was registered.")

    _model: Private[WebhookEndpointModel]
    _viewer: Private[Principal]

    @classmethod
    def from_model(cls, model: WebhookEndpointModel, viewer: Principal) -> WebhookEndpoint:
        return cls(
            id=object_id(model.id),
            url=model.url,
            description=model.description,
            event_types=[WebhookEventType(name) for name in model.event_types],
            enabled=model.enabled,
            disabled_reason=model.disabled_reason,
            created_at=model.created_at,
            _model=model,
            _viewer=viewer,
        )

    @resolver(description="Newest first.")
    async def deliveries(
        self,
        first: Annotated[
            int | None, strawberry.argument(description="How many, 1..200.")
        ] = DELIVERIES_PAGE_DEFAULT,
        after: AfterArgument = strawberry.UNSET,
    ) -> WebhookDeliveryConnection:
        with refusals_as_errors():
            page = await webhooks.list_webhook_deliveries(
                actor=self._viewer,
                endpoint=self._model,
                first=page_size(first) if first is not None else DELIVERIES_PAGE_DEFAULT,
                after=given_text(after),
            )
        return WebhookDeliveryConnection.of(
            page, WebhookDeliveryEdge.along(page, WebhookDelivery.from_model)
        )
