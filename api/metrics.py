"""Prometheus metrics of the API process (scraped from GET /metrics)."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from domain.clock import Clock
from workers.backlog import read_outbox_backlog, read_webhook_backlog

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

# A scrape must answer even when the database hangs: the backlog read is
# given this long, and on failure the backlog gauges keep their last values.
BACKLOG_READ_TIMEOUT_SECONDS = 3.0

GRAPHQL_REQUESTS = Counter(
    "licenses_graphql_requests",
    "GraphQL requests by operation name and type.",
    ["operation", "operation_type"],
    registry=REGISTRY,
)
GRAPHQL_LATENCY = Histogram(
    "licenses_graphql_request_seconds",
    "Time to answer a GraphQL request.",
    ["operation_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
GRAPHQL_ERRORS = Counter(
    "licenses_graphql_errors",
    "Errors returned, by code: top-level errors and mutation payload errors.",
    ["code", "kind"],
    registry=REGISTRY,
)
HTTP_RESPONSES = Counter(
    "licenses_http_responses",
    "HTTP responses by route and status code.",
    ["route", "status"],
    registry=REGISTRY,
)
IDEMPOTENT_REPLAYS = Counter(
    "licenses_idempotent_replays",
    "Mutation responses replayed for a repeated Idempotency-Key.",
    registry=REGISTRY,
)

# The email backlog, read from the outbox table at each scrape: the same
# values on every API process (aggregate with max, not sum).
OUTBOX_PENDING = Gauge(
    "licenses_outbox_pending",
    "Outbox emails neither sent nor failed: queued, being sent or waiting for a retry.",
    registry=REGISTRY,
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "licenses_outbox_oldest_pending_age_seconds",
    "Seconds since the oldest pending outbox email was committed; 0 when none is pending.",
    registry=REGISTRY,
)
OUTBOX_FAILED = Gauge(
    "licenses_outbox_failed",
    "Outbox emails given up on (refused for good or out of attempts).",
    registry=REGISTRY,
)
OUTBOX_BACKLOG_READ_AT = Gauge(
    "licenses_outbox_backlog_read_timestamp_seconds",
    "Unix time of the last successful read of the outbox backlog gauges; 0 before the first.",
    registry=REGISTRY,
)

# Webhook deliveries, read from the database at each scrape like the emails
# (the workers that make them are other processes).
WEBHOOK_DELIVERIES = Gauge(
    "licenses_webhook_deliveries",
    "Webhook deliveries by outcome: PENDING (not yet accepted), SUCCEEDED, FAILED.",
    ["status"],
    registry=REGISTRY,
)
WEBHOOK_OLDEST_PENDING_AGE = Gauge(
    "licenses_webhook_oldest_pending_age_seconds",
    "Seconds since the oldest pending webhook delivery was queued; 0 when none is pending.",
    registry=REGISTRY,
)


async def refresh_outbox_backlog(*, clock: Clock) -> None:
    """Set the backlog gauges from the database; on any failure keep the last values."""
    try:
        backlog = await asyncio.wait_for(
            read_outbox_backlog(clock=clock), BACKLOG_READ_TIMEOUT_SECONDS
        )
    except Exception as exc:  # the database down, slow or failing: /metrics still answers
        log.warning("metrics: outbox backlog not read, keeping the last values: %r", exc)
        return
    OUTBOX_PENDING.set(backlog.pending)
    OUTBOX_OLDEST_PENDING_AGE.set(backlog.oldest_pending_age.total_seconds())
    OUTBOX_FAILED.set(backlog.failed)
    OUTBOX_BACKLOG_READ_AT.set(time.time())
    try:
        webhooks = await asyncio.wait_for(
            read_webhook_backlog(clock=clock), BACKLOG_READ_TIMEOUT_SECONDS
        )
    except Exception as exc:
        log.warning("metrics: webhook backlog not read, keeping the last values: %r", exc)
        return
    for status, count in webhooks.by_status.items():
        WEBHOOK_DELIVERIES.labels(status=status).set(count)
    WEBHOOK_OLDEST_PENDING_AGE.set(webhooks.oldest_pending_age.total_seconds())


def render() -> bytes:
    return generate_latest(REGISTRY)
