"""Dramatiq actors: thin wrappers around the job functions, ids only.

Import this module only after `workers.broker.configure_broker(...)` (the
decorators bind to that broker); dramatiq's CLI does so through
`workers.broker:setup_worker_broker`.

Retries: the outbox row is the source of truth. A delivery failure is
recorded on the row (attempts, last error, next attempt) and a delayed
message is sent for the next attempt, so the actor itself raises only on
unexpected errors (the database unreachable...). Dramatiq then retries with
backoff (15 s to 1 h); a message that exhausts its retries goes to the
dead-letter queue while its row stays undelivered, and the relay sends it
again.
"""

from __future__ import annotations

import logging

import dramatiq

from workers.broker import (
    DELIVER_EMAIL,
    EMAIL_QUEUE,
    PERIODIC_QUEUE,
    RUN_PERIODIC,
    current_broker,
    enqueue_delivery,
    schedule_retry,
    worker_runtime,
)
from workers.jobs import run_periodic_job
from workers.outbox.delivery import deliver_outbox_message
from workers.outbox.results import DeliveryStatus

log = logging.getLogger(__name__)

_broker = current_broker()

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS


@dramatiq.actor(
    broker=_broker,
    actor_name=DELIVER_EMAIL,
    queue_name=EMAIL_QUEUE,
    max_retries=20,
    min_backoff=15 * SECOND_MS,
    max_backoff=60 * MINUTE_MS,
    # Cuts whatever hangs (the database too). The send itself is also cut at
    # the policy's send budget, inside the claim's lease, whatever
    # OUTBOX_LEASE_SECONDS is.
    time_limit=90 * SECOND_MS,
)
async def deliver_email(message_id: int) -> None:
    runtime = await worker_runtime()
    outcome = await deliver_outbox_message(
        message_id,
        mailer=runtime.mailer,
        clock=runtime.clock,
        settings=runtime.settings,
        policy=runtime.policy,
    )
    if outcome.status == DeliveryStatus.RETRY and outcome.retry_at is not None:
        try:
            await schedule_retry(message_id, outcome.retry_at, clock=runtime.clock)
        except Exception:
            log.warning("outbox %s: cannot schedule the retry; the relay will", message_id)


@dramatiq.actor(
    broker=_broker,
    actor_name=RUN_PERIODIC,
    queue_name=PERIODIC_QUEUE,
    # The scheduler sends the job again next interval anyway.
    max_retries=3,
    min_backoff=5 * SECOND_MS,
    max_backoff=MINUTE_MS,
    # A backlog built while every worker was down runs once, not once per minute missed.
    max_age=10 * MINUTE_MS,
    time_limit=30 * MINUTE_MS,
)
async def run_periodic(job: str) -> None:
    runtime = await worker_runtime()
    result = await run_periodic_job(
        job, clock=runtime.clock, enqueue=enqueue_delivery, policy=runtime.policy
    )
    log.debug("periodic job %s done: %s", job, result)
