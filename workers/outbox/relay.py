"""The relay: hand rows left behind to the broker again.

Covers the broker being down at commit time, a process killed between
commit and enqueue, rows written by another process (the CLI), messages
lost by Redis or fetched by a worker that died before starting them, and
rows whose sender died (their lease has passed).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from domain.clock import Clock
from domain.models import OutboxMessage
from domain.sql import is_postgres
from workers.outbox.policy import DEFAULT_POLICY, DeliveryPolicy

log = logging.getLogger(__name__)

Enqueue = Callable[[Sequence[int]], Awaitable[None]]


async def relay_outbox(
    *,
    clock: Clock,
    enqueue: Enqueue,
    limit: int = 500,
    max_batches: int = 20,
    policy: DeliveryPolicy = DEFAULT_POLICY,
) -> int:
    """Hand undelivered due rows that nobody claimed to `enqueue`: never
    handed over, handed over more than `policy.redeliver_after` ago and still
    not claimed, or claimed by a sender whose lease has passed.

    Returns how many ids were enqueued.
    """
    total = 0
    for _ in range(max_batches):
        ids = await _mark_for_relay(limit, clock.now(), policy)
        if not ids:
            break
        try:
            await enqueue(ids)
        except BaseException:
            # Not handed over: let the next relay take them at once.
            await OutboxMessage.filter(id__in=ids, sent_at__isnull=True).update(enqueued_at=None)
            raise
        total += len(ids)
        if len(ids) < limit:
            break
    if total:
        log.info("outbox relay: enqueued %s message(s)", total)
    return total


async def _mark_for_relay(limit: int, now: datetime, policy: DeliveryPolicy) -> list[int]:
    stale = now - policy.redeliver_after
    relayable = Q(sent_at__isnull=True, failed_at__isnull=True, available_at__lte=now) & (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=stale)
    )
    async with in_transaction() as connection:
        query = (
            OutboxMessage.filter(relayable)
            .order_by("available_at", "id")
            .limit(limit)
            .using_db(connection)
        )
        if is_postgres(connection):
            query = query.select_for_update(skip_locked=True)
        rows = await query
        ids = [row.id for row in rows]
        if ids:
            await (
                OutboxMessage.filter(Q(id__in=ids) & relayable)
                .using_db(connection)
                .update(enqueued_at=now)
            )
    return ids


async def mark_enqueued(ids: Sequence[int], *, at: datetime) -> None:
    """Record that the ids were handed to the broker: the relay leaves them
    alone for `redeliver_after` from `at`.

    A row already claimed by then (a fast worker) is left unmarked, so that
    its lease alone decides when the relay takes it if that worker dies.
    """
    if ids:
        await OutboxMessage.filter(
            id__in=list(ids), sent_at__isnull=True, available_at__lte=at
        ).update(enqueued_at=at)
