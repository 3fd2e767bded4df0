"""The email backlog as the database sees it, for monitoring.

The outbox table is the source of truth: a retry waiting in Redis' delayed
queue, a message fetched by a worker that died, or a row nobody enqueued
are all invisible to the broker's queue lengths, and all still a row here
that is neither sent nor failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tortoise.expressions import Q
from tortoise.functions import Count, Min

from domain.clock import Clock
from domain.enums import WebhookDeliveryStatus
from domain.models import OutboxMessage, WebhookDelivery


@dataclass(frozen=True)
class OutboxBacklog:
    # Neither sent nor failed: waiting, being sent, or waiting for a retry.
    pending: int
    # How long the oldest pending email has waited since it was committed;
    # zero when nothing is pending.
    oldest_pending_age: timedelta
    # Refused for good or out of attempts; never pruned, so this only grows
    # until someone deals with them.
    failed: int


async def read_outbox_backlog(*, clock: Clock) -> OutboxBacklog:
    """One statement over the unsent rows (sent rows, the bulk of the
    table, are skipped through the index on sent_at)."""
    pending_only = Q(failed_at__isnull=True)
    (row,) = (
        await OutboxMessage.filter(sent_at__isnull=True)
        .annotate(
            pending=Count("id", _filter=pending_only),
            failed=Count("id", _filter=Q(failed_at__isnull=False)),
            oldest=Min("created_at", _filter=pending_only),
        )
        .values("pending", "failed", "oldest")
    )
    oldest = row["oldest"]
    age = max(clock.now() - oldest, timedelta(0)) if oldest is not None else timedelta(0)
    return OutboxBacklog(
        pending=int(row["pending"]), oldest_pending_age=age, failed=int(row["failed"])
    )


@dataclass(frozen=True)
class WebhookBacklog:
    # Deliveries by status (PENDING, SUCCEEDED, FAILED), every status present.
    by_status: dict[str, int]
    # How long the oldest pending delivery has waited since it was queued.
    oldest_pending_age: timedelta


async def read_webhook_backlog(*, clock: Clock) -> WebhookBacklog:
    rows = (
        await WebhookDelivery.all()
        .annotate(n=Count("id"), oldest=Min("created_at"))
        .group_by("status")
        .values("status", "n", "oldest")
    )
    by_status = {status.value: 0 for status in WebhookDeliveryStatus}
    oldest = None
    for row in rows:
        by_status[str(row["status"])] = int(row["n"])
        if row["status"] == WebhookDeliveryStatus.PENDING:
            oldest = row["oldest"]
    age = max(clock.now() - oldest, timedelta(0)) if oldest is not None else timedelta(0)
    return WebhookBacklog(by_status=by_status, oldest_pending_age=age)
