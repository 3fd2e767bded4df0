"""Prometheus metrics of the API process (scraped from GET /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

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


def render() -> bytes:
    return generate_latest(REGISTRY)
