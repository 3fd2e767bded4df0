"""Webhook events: written in the transaction of the change that causes them.

One fan-out per event: the event row (its id is the webhook-id of every
copy), then one delivery and one outbox row per endpoint of the account that
wants the type. An account without such an endpoint writes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.enums import WEBHOOK_OUTBOX_KIND, WebhookDeliveryStatus, WebhookEventType
from domain.models import Charge, OutboxMessage, WebhookDelivery, WebhookEndpoint, WebhookEvent
from domain.rules.renewal import Renewal


def new_event_id() -> str:
    return "msg_" + secrets.token_hex(16)


def wants(endpoint: WebhookEndpoint, event_type: WebhookEventType) -> bool:
    return not endpoint.event_types or event_type.value in endpoint.event_types


async def open_endpoints(account_id: int, connection: BaseDBAsyncClient) -> list[WebhookEndpoint]:
    return (
        await WebhookEndpoint.filter(account_id=account_id, enabled=True, deleted_at__isnull=True)
        .order_by("id")
        .using_db(connection)
    )


async def fan_out(
    *,
    connection: BaseDBAsyncClient,
    now: datetime,
    account_id: int,
    event_type: WebhookEventType,
    data: Mapping[str, Any],
    endpoints: Sequence[WebhookEndpoint],
) -> list[int]:
    """Write the event for every one of the account's open `endpoints` (read
    once per transaction by the caller) that wants it; returns the outbox ids."""
    endpoints = [endpoint for endpoint in endpoints if wants(endpoint, event_type)]
    if not endpoints:
        return []
    event = await WebhookEvent.create(
        id=new_event_id(),
        account_id=account_id,
        event_type=event_type.value,
        data={"accountId": str(account_id), **data},
        created_at=now,
        using_db=connection,
    )
    outbox_ids = []
    for endpoint in endpoints:
        _, outbox_id = await queue_delivery(
            connection=connection, now=now, endpoint=endpoint, event=event
        )
        outbox_ids.append(outbox_id)
    return outbox_ids


async def queue_delivery(
    *,
    connection: BaseDBAsyncClient,
    now: datetime,
    endpoint: WebhookEndpoint,
    event: WebhookEvent,
) -> tuple[WebhookDelivery, int]:
    """A delivery of `event` to `endpoint` and its outbox row's id (also a redelivery)."""
    delivery = await WebhookDelivery.create(
        # Objects, not ids: the delivery returned carries its event and endpoint.
        endpoint=endpoint,
        event=event,
        status=WebhookDeliveryStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
        using_db=connection,
    )
    message = await OutboxMessage.create(
        account_id=endpoint.account_id,
        kind=WEBHOOK_OUTBOX_KIND,
        payload={"deliveryId": delivery.id},
        created_at=now,
        available_at=now,
        using_db=connection,
    )
    return delivery, int(message.id)


def seat_event_data(
    *, previous_total: int, total: int, effective_at: datetime, charge: Charge | None = None
) -> dict[str, Any]:
    """`data` of the SEATS_* events (charge fields only when charged)."""
    data: dict[str, Any] = {
        "previousTotal": previous_total,
        "total": total,
        "effectiveAt": effective_at.isoformat(),
    }
    if charge is not None:
        data |= {
            "chargeId": str(charge.id),
            "amountCents": charge.amount_cents,
            "currency": charge.currency,
        }
    return data


def renewal_event_data(renewal: Renewal, *, charge_id: int | None) -> dict[str, Any]:
    """`data` of PERIOD_RENEWED (chargeId null for a free renewal)."""
    return {
        "periodStart": renewal.period.start.isoformat(),
        "periodEnd": renewal.period.end.isoformat(),
        "total": renewal.quantity,
        "chargeId": str(charge_id) if charge_id is not None else None,
        "amountCents": renewal.amount_cents,
    }
