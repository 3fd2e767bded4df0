"""One webhook attempt for a claimed outbox row: re-read, sign, POST, record."""

from __future__ import annotations

import asyncio
import weakref

import httpx
from cryptography.exceptions import InvalidTag

from domain.clock import Clock
from domain.models import OutboxMessage, WebhookDelivery
from domain.settings import Settings
from domain.webhook_secrets import decrypt_secret
from workers.outbox.policy import DeliveryPolicy
from workers.outbox.results import DeliveryOutcome
from workers.webhooks import client as http
from workers.webhooks.client import PostResult
from workers.webhooks.results import close_undeliverable, record_attempt
from workers.webhooks.signing import event_body, signed_headers

# One client (and connection pool) per event loop and guard mode.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[bool, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


def client_for(settings: Settings) -> httpx.AsyncClient:
    allow_private = not settings.production
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(allow_private)
    if client is None or client.is_closed:
        client = per_loop[allow_private] = http.build_client(allow_private=allow_private)
    return client


async def close_clients() -> None:
    per_loop = _clients.pop(asyncio.get_running_loop(), {})
    for client in per_loop.values():
        await client.aclose()


async def deliver_webhook(
    row: OutboxMessage, *, clock: Clock, settings: Settings, policy: DeliveryPolicy
) -> DeliveryOutcome:
    """The attempt of a claimed WEBHOOK row (its payload names the delivery)."""
    delivery = (
        await WebhookDelivery.filter(id=int(row.payload.get("deliveryId", 0)))
        .select_related("endpoint", "event")
        .first()
    )
    if delivery is None:
        return await close_undeliverable(
            row, None, "the delivery no longer exists", now=clock.now()
        )
    endpoint, event = delivery.endpoint, delivery.event
    if endpoint.deleted_at is not None or not endpoint.enabled:
        return await close_undeliverable(row, delivery, "the endpoint is disabled", now=clock.now())
    at = clock.now()
    try:
        secrets = [decrypt_secret(endpoint.secret_encrypted, endpoint_id=endpoint.id)]
        if (
            endpoint.previous_secret_encrypted is not None
            and endpoint.previous_secret_expires_at is not None
            and endpoint.previous_secret_expires_at > at
        ):
            secrets.append(
                decrypt_secret(endpoint.previous_secret_encrypted, endpoint_id=endpoint.id)
            )
    except InvalidTag:
        # Sent unsigned would be worse than not sent: a failed attempt, retried
        # on schedule, until an administrator rotates the secret.
        unreadable = PostResult(
            None, "the secret cannot be read (SECRET_KEY changed?): rotate it", 0
        )
        return await record_attempt(
            row, delivery, endpoint, unreadable, now=clock.now(), policy=policy
        )
    body = event_body(event)
    result = await http.post_webhook(
        client_for(settings),
        endpoint.url,
        body=body.encode("utf-8"),
        headers=signed_headers(event.id, at, body, secrets),
        budget_seconds=policy.send_budget.total_seconds(),
    )
    return await record_attempt(row, delivery, endpoint, result, now=clock.now(), policy=policy)
