"""Webhook endpoints: register, change, rotate the secret, delete, redeliver."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.enums import WebhookEventType
from domain.services import webhooks
from domain.services.webhooks import EndpointWithSecret
from schema.context import Info, require_principal
from schema.fields import mutation
from schema.mutations.common import UserError, errors_field, given, run_mutation
from schema.types.webhooks import WebhookDelivery, WebhookEndpoint

EndpointIdArgument = Annotated[strawberry.ID, strawberry.argument(description="The endpoint.")]


@strawberry.input(description="A new endpoint.")
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description="https (http and loopback in development only).")
    event_types: list[WebhookEventType] | None = strawberry.field(
        default_factory=list, description="Empty: every event type."
    )
    description: str | None = strawberry.field(default=strawberry.UNSET, description="A note.")


@strawberry.input(description="What to change; an absent field is unchanged.")
class UpdateWebhookEndpointInput:
    url: str | None = strawberry.field(default=strawberry.UNSET, description="The new URL.")
    event_types: list[WebhookEventType] | None = strawberry.field(
        default=strawberry.UNSET, description="The new types; empty: every type."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="The new note; empty clears it."
    )
    enabled: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Enable again (clears the reason) or disable."
    )


@strawberry.type(description="Result of the webhook endpoint mutations.")
class WebhookEndpointPayload:
    endpoint: WebhookEndpoint | None = strawberry.field(default=None, description="The endpoint.")
    secret: str | None = strawberry.field(
        default=None,
        description="The whsec_ secret: present only in the payloads of createWebhookEndpoint "
        "and rotateWebhookSecret.",
    )
    errors: list[UserError] = errors_field()


@strawberry.type(description="Result of redeliverWebhook.")
class WebhookDeliveryPayload:
    delivery: WebhookDelivery | None = strawberry.field(
        default=None, description="The new delivery of the same event."
    )
    errors: list[UserError] = errors_field()


@strawberry.type
class WebhookMutations:
    @mutation(description="ADMIN or OWNER. The secret is shown once, in this payload.")
    async def create_webhook_endpoint(
        self, info: Info, input: CreateWebhookEndpointInput
    ) -> WebhookEndpointPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            WebhookEndpointPayload,
            webhooks.create_webhook_endpoint(
                actor=actor,
                url=input.url,
                event_types=input.event_types or (),
                description=given(input.description),
                clock=info.context.clock,
            ),
            lambda made: _payload(made, info),
        )

    @mutation(description="ADMIN or OWNER.")
    async def update_webhook_endpoint(
        self, info: Info, id: EndpointIdArgument, input: UpdateWebhookEndpointInput
    ) -> WebhookEndpointPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            WebhookEndpointPayload,
            webhooks.update_webhook_endpoint(
                actor=actor,
                endpoint_id=id,
                url=given(input.url),
                event_types=given(input.event_types),
                description=given(input.description),
                enabled=given(input.enabled),
                clock=info.context.clock,
            ),
            lambda changed: _payload(changed, info),
        )

    @mutation(
        description="A new secret, shown once; the old one keeps signing beside it for 24 hours."
    )
    async def rotate_webhook_secret(
        self, info: Info, id: EndpointIdArgument
    ) -> WebhookEndpointPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            WebhookEndpointPayload,
            webhooks.rotate_webhook_secret(actor=actor, endpoint_id=id, clock=info.context.clock),
            lambda rotated: _payload(rotated, info),
        )

    @mutation(description="ADMIN or OWNER. Nothing more is sent to it.")
    async def delete_webhook_endpoint(
        self, info: Info, id: EndpointIdArgument
    ) -> WebhookEndpointPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            WebhookEndpointPayload,
            webhooks.delete_webhook_endpoint(actor=actor, endpoint_id=id, clock=info.context.clock),
            lambda deleted: _payload(deleted, info),
        )

    @mutation(description="Queues the delivery's event again for its endpoint.")
    async def redeliver_webhook(
        self,
        info: Info,
        delivery_id: Annotated[strawberry.ID, strawberry.argument(description="The delivery.")],
    ) -> WebhookDeliveryPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            WebhookDeliveryPayload,
            webhooks.redeliver_webhook(
                actor=actor, delivery_id=delivery_id, clock=info.context.clock
            ),
            lambda delivery: WebhookDeliveryPayload(delivery=WebhookDelivery.from_model(delivery)),
        )


def _payload(made: EndpointWithSecret, info: Info) -> WebhookEndpointPayload:
    return WebhookEndpointPayload(
        endpoint=WebhookEndpoint.from_model(made.endpoint, require_principal(info)),
        secret=made.secret,
    )
