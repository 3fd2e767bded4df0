"""Recording a webhook attempt: the outbox row, the delivery, its attempt log
and the endpoint's health commit together.

Like every outbox result, the record is conditional on the claim that made
the attempt (same attempt count, row still open), so a stale sender never
overwrites a newer attempt.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from domain.emails import WebhookEndpointDisabledPayload
from domain.enums import WebhookDeliveryStatus
from domain.models import OutboxMessage, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from domain.uow import dispatch
from workers.outbox.policy import DeliveryPolicy
from workers.outbox.results import DeliveryOutcome, DeliveryStatus, cut
from workers.webhooks.client import PostResult

log = logging.getLogger(__name__)

GONE = 410
REASON_GONE = "The endpoint answered 410 Gone."
REASON_FAILING = "Every delivery failed for three days."


async def record_attempt(
    row: OutboxMessage,
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    result: PostResult,
    *,
    now: datetime,
    policy: DeliveryPolicy,
) -> DeliveryOutcome:
    outbox: dict[str, Any]
    changes: dict[str, Any] = {
        "attempts": row.attempts,
        "last_attempt_at": now,
        "last_response_status": result.status,
        "last_error": cut(result.error) if result.error else None,
    }
    endpoint_changes: dict[str, Any] = {}
    disable_reason = None
    emails: list[int] = []
    if result.succeeded:
        status = DeliveryStatus.SENT
        outbox = {"sent_at": now, "last_error": None}
        changes |= {"status": WebhookDeliveryStatus.SUCCEEDED, "next_attempt_at": None}
        endpoint_changes["failing_since"] = None
        retry_at = None
    else:
        failing_since = endpoint.failing_since or now
        if result.status == GONE:
            disable_reason = REASON_GONE
        elif now - failing_since >= policy.webhook_disable_after:
            disable_reason = REASON_FAILING
        delay = policy.webhook_retry_at(row.attempts)
        retry_at = None if disable_reason or delay is None else now + delay
        message = cut(result.error or "failed")
        if retry_at is None:
            status = DeliveryStatus.FAILED
            outbox = {"failed_at": now, "last_error": message}
            changes |= {"status": WebhookDeliveryStatus.FAILED, "next_attempt_at": None}
        else:
            status = DeliveryStatus.RETRY
            outbox = {"available_at": retry_at, "last_error": message}
            changes |= {"status": WebhookDeliveryStatus.PENDING, "next_attempt_at": retry_at}
        if endpoint.failing_since is None:
            endpoint_changes["failing_since"] = failing_since
    async with in_transaction() as connection:
        recorded = (
            await OutboxMessage.filter(
                id=row.id, attempts=row.attempts, sent_at__isnull=True, failed_at__isnull=True
            )
            .using_db(connection)
            .update(**outbox)
        )
        if recorded != 1:
            return DeliveryOutcome(row.id, DeliveryStatus.NOT_DUE)
        await WebhookDelivery.filter(id=delivery.id).using_db(connection).update(**changes)
        await WebhookAttempt.create(
            delivery_id=delivery.id,
            attempted_at=now,
            response_status=result.status,
            error=changes["last_error"],
            duration_ms=result.duration_ms,
            using_db=connection,
        )
        if endpoint_changes:
            await (
                WebhookEndpoint.filter(id=endpoint.id)
                .using_db(connection)
                .update(**endpoint_changes)
            )
        if disable_reason is not None:
            disabled = (
                await WebhookEndpoint.filter(id=endpoint.id, enabled=True)
                .using_db(connection)
                .update(enabled=False, disabled_reason=disable_reason)
            )
            if disabled and disable_reason == REASON_FAILING:
                # 410 is the receiver's own choice; three days of failure
                # is news to the owner.
                notice = WebhookEndpointDisabledPayload(endpoint_id=endpoint.id)
                email = await OutboxMessage.create(
                    account_id=endpoint.account_id,
                    kind=notice.email_kind,
                    payload=notice.to_payload(),
                    created_at=now,
                    available_at=now,
                    using_db=connection,
                )
                emails.append(email.id)
            if disabled:
                log.warning("webhook endpoint %s disabled: %s", endpoint.id, disable_reason)
    if emails:
        await dispatch(emails)
    log.info(
        "outbox %s: webhook %s to endpoint %s: %s (attempt %s)",
        row.id,
        delivery.event_id,
        endpoint.id,
        result.status or result.error,
        row.attempts,
    )
    return DeliveryOutcome(row.id, status, detail=result.error, retry_at=retry_at)


async def close_undeliverable(
    row: OutboxMessage, delivery: WebhookDelivery | None, reason: str, *, now: datetime
) -> DeliveryOutcome:
    """The endpoint is disabled or deleted (or the delivery is gone): nothing is sent."""
    async with in_transaction() as connection:
        await (
            OutboxMessage.filter(id=row.id, sent_at__isnull=True, failed_at__isnull=True)
            .using_db(connection)
            .update(failed_at=now, last_error=cut(f"not sent: {reason}"))
        )
        if delivery is not None:
            await (
                WebhookDelivery.filter(id=delivery.id, status=WebhookDeliveryStatus.PENDING)
                .using_db(connection)
                .update(
                    status=WebhookDeliveryStatus.FAILED, next_attempt_at=None, last_error=reason
                )
            )
    return DeliveryOutcome(row.id, DeliveryStatus.FAILED, detail=reason)
