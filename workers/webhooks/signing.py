"""The Standard Webhooks request: body and signed headers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook

from domain.enums import WebhookEventType
from domain.models import WebhookEvent


def event_body(event: WebhookEvent) -> str:
    """`{"type", "timestamp", "data"}`; the same text on every attempt."""
    return json.dumps(
        {
            "type": WebhookEventType(event.event_type).wire_type,
            "timestamp": event.created_at.isoformat(),
            "data": event.data,
        },
        separators=(",", ":"),
    )


def signed_headers(
    event_id: str, at: datetime, body: str, secrets: Sequence[str]
) -> dict[str, str]:
    """One `v1,` signature per secret (two during a rotation), space-separated."""
    signature = " ".join(Webhook(secret).sign(event_id, at, body) for secret in secrets)
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
