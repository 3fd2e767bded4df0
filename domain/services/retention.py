"""Rows kept only for a while: deleting those past their expiry (periodic job)."""

from __future__ import annotations

from domain.clock import Clock
from domain.models import IdempotencyRecord


async def prune_idempotency_records(*, clock: Clock) -> int:
    """Delete expired Idempotency-Key records; a live key is never touched."""
    return await IdempotencyRecord.filter(expires_at__lte=clock.now()).delete()
