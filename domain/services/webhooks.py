"""Webhook endpoints: register, change, rotate the secret, delete, redeliver.

ADMIN or OWNER only; another account's endpoint or delivery is NOT_FOUND.
The secret is returned once (create, rotate) and stored only encrypted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from domain import config
from domain.clock import Clock
from domain.enums import AuditAction, WebhookEventType
from domain.errors import DomainError, ErrorCode
from domain.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from domain.principal import Principal, parse_id, require_admin
from domain.rules.webhooks import url_problem
from domain.uow import UnitOfWork, unit_of_work
from domain.webhook_secrets import encrypt_secret, new_webhook_secret
from domain.webhooks import queue_delivery

# How long the previous secret keeps signing beside the new one.
ROTATION_OVERLAP = timedelta(hours=24)
MAX_DESCRIPTION = 500
REASON_ADMIN = "Disabled by an administrator."


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    # Set by create and rotate only: shown once.
    secret: str | None = None


def _clean_url(url: str) -> str:
    cleaned = url.strip()
    problem = url_problem(cleaned, development=config.current().webhook_development)
    if problem:
        raise DomainError(ErrorCode.INVALID_INPUT, problem, field="url")
    return cleaned


def _clean_description(description: str | None) -> str | None:
    if description is None:
        return None
    cleaned = description.strip()
    if len(cleaned) > MAX_DESCRIPTION:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"The description is longer than {MAX_DESCRIPTION} characters.",
            field="description",
        )
    return cleaned or None


def _types(event_types: Sequence[WebhookEventType]) -> list[str]:
    chosen = set(event_types)
    return [t.value for t in WebhookEventType if t in chosen]


async def _endpoint(work: UnitOfWork, actor: Principal, endpoint_id: str) -> WebhookEndpoint:
    key = parse_id(endpoint_id, what="webhook endpoint")
    endpoint = (
        await WebhookEndpoint.filter(id=key, account_id=actor.account_id, deleted_at__isnull=True)
        .using_db(work.connection)
        .first()
    )
    if endpoint is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No webhook endpoint with this ID.")
    return endpoint


async def create_webhook_endpoint(
    *,
    actor: Principal,
    url: str,
    event_types: Sequence[WebhookEventType] = (),
    description: str | None = None,
    clock: Clock,
) -> EndpointWithSecret:
    require_admin(actor)
    cleaned_url = _clean_url(url)
    cleaned_description = _clean_description(description)
    secret = new_webhook_secret()
    async with unit_of_work(clock.now()) as work:
        endpoint = await WebhookEndpoint.create(
            account_id=actor.account_id,
            url=cleaned_url,
            description=cleaned_description,
            event_types=_types(event_types),
            # The ciphertext is bound to the id, known only once the row exists.
            secret_encrypted="",
            created_at=work.now,
            using_db=work.connection,
        )
        endpoint.secret_encrypted = encrypt_secret(secret, endpoint_id=endpoint.id)
        await endpoint.save(using_db=work.connection, update_fields=["secret_encrypted"])
        await work.audit(
            actor=actor,
            action=AuditAction.WEBHOOK_ENDPOINT_CREATED,
            data={
                "endpointId": endpoint.id,
                "url": cleaned_url,
                "eventTypes": endpoint.event_types,
            },
        )
    return EndpointWithSecret(endpoint=endpoint, secret=secret)


async def update_webhook_endpoint(
    *,
    actor: Principal,
    endpoint_id: str,
    url: str | None = None,
    event_types: Sequence[WebhookEventType] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    clock: Clock,
) -> EndpointWithSecret:
    """An absent field is unchanged; an empty description clears it.
    Enabling again clears the reason and the failure run."""
    require_admin(actor)
    changes: dict[str, object] = {}
    if url is not None:
        changes["url"] = _clean_url(url)
    if event_types is not None:
        changes["event_types"] = _types(event_types)
    if description is not None:
        changes["description"] = _clean_description(description)
    async with unit_of_work(clock.now()) as work:
        endpoint = await _endpoint(work, actor, endpoint_id)
        if enabled is True and not endpoint.enabled:
            changes |= {"enabled": True, "disabled_reason": None, "failing_since": None}
        elif enabled is False and endpoint.enabled:
            changes |= {"enabled": False, "disabled_reason": REASON_ADMIN}
        if changes:
            await WebhookEndpoint.filter(id=endpoint.id).using_db(work.connection).update(**changes)
            await work.audit(
                actor=actor,
                action=AuditAction.WEBHOOK_ENDPOINT_UPDATED,
                data={"endpointId": endpoint.id, "changed": sorted(changes)},
            )
            endpoint = await WebhookEndpoint.get(id=endpoint.id, using_db=work.connection)
    return EndpointWithSecret(endpoint=endpoint)


async def rotate_webhook_secret(
    *, actor: Principal, endpoint_id: str, clock: Clock
) -> EndpointWithSecret:
    """A new secret; the current one keeps signing beside it for 24 hours."""
    require_admin(actor)
    secret = new_webhook_secret()
    async with unit_of_work(clock.now()) as work:
        endpoint = await _endpoint(work, actor, endpoint_id)
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = work.now + ROTATION_OVERLAP
        endpoint.secret_encrypted = encrypt_secret(secret, endpoint_id=endpoint.id)
        await endpoint.save(
            using_db=work.connection,
            update_fields=[
                "secret_encrypted",
                "previous_secret_encrypted",
                "previous_secret_expires_at",
            ],
        )
        await work.audit(
            actor=actor,
            action=AuditAction.WEBHOOK_SECRET_ROTATED,
            data={"endpointId": endpoint.id},
        )
    return EndpointWithSecret(endpoint=endpoint, secret=secret)


async def delete_webhook_endpoint(
    *, actor: Principal, endpoint_id: str, clock: Clock
) -> EndpointWithSecret:
    """Deleted rows stay (their delivery log is history) but are never sent to
    or listed again."""
    require_admin(actor)
    async with unit_of_work(clock.now()) as work:
        endpoint = await _endpoint(work, actor, endpoint_id)
        await (
            WebhookEndpoint.filter(id=endpoint.id)
            .using_db(work.connection)
            .update(deleted_at=work.now, enabled=False, disabled_reason="Deleted.")
        )
        await work.audit(
            actor=actor,
            action=AuditAction.WEBHOOK_ENDPOINT_DELETED,
            data={"endpointId": endpoint.id, "url": endpoint.url},
        )
        endpoint = await WebhookEndpoint.get(id=endpoint.id, using_db=work.connection)
    return EndpointWithSecret(endpoint=endpoint)


async def redeliver_webhook(*, actor: Principal, delivery_id: str, clock: Clock) -> WebhookDelivery:
    """The delivery's event again for its endpoint: a new delivery, the same
    webhook-id (receivers deduplicate on it)."""
    require_admin(actor)
    key = parse_id(delivery_id, what="webhook delivery")
    async with unit_of_work(clock.now()) as work:
        delivery = (
            await WebhookDelivery.filter(
                id=key,
                endpoint__account_id=actor.account_id,
                endpoint__deleted_at__isnull=True,
            )
            .select_related("endpoint")
            .using_db(work.connection)
            .first()
        )
        if delivery is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No webhook delivery with this ID.")
        if not delivery.endpoint.enabled:
            raise DomainError(ErrorCode.INVALID_INPUT, "The endpoint is disabled; enable it first.")
        event = await WebhookEvent.get(id=delivery.event_id, using_db=work.connection)
        fresh, outbox_id = await queue_delivery(
            connection=work.connection, now=work.now, endpoint=delivery.endpoint, event=event
        )
        work.outbox_ids.append(outbox_id)
    return fresh
