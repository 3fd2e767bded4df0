"""The outcome of a delivery, recorded on the row (and on its invitation).

Each record is conditional on the row still being open, so a stale sender
never overwrites what a newer attempt recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from domain.clock import Clock
from domain.models import Invitation, OutboxMessage
from workers.mail.message import DeliveryError
from workers.outbox.policy import DeliveryPolicy

log = logging.getLogger(__name__)

# Stored errors are cut to the columns' length (CharField(500)).
_MAX_ERROR_LENGTH = 500


class DeliveryStatus(StrEnum):
    SENT = "SENT"
    # Nothing to send any more (invitation revoked, accepted, superseded,
    # expired...): the row is closed with `sent_at` and the reason in last_error.
    SKIPPED = "SKIPPED"
    # A temporary failure: the row is due again at `retry_at`.
    RETRY = "RETRY"
    # A permanent refusal or too many attempts: `failed_at` is set.
    FAILED = "FAILED"
    # Nothing done: the row is already sent or failed...
    ALREADY_DONE = "ALREADY_DONE"
    # ...or claimed by someone else, or waiting for its next attempt.
    NOT_DUE = "NOT_DUE"
    MISSING = "MISSING"


@dataclass(frozen=True)
class DeliveryOutcome:
    message_id: int
    status: DeliveryStatus
    detail: str | None = None
    retry_at: datetime | None = None


def cut(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_LENGTH else text[: _MAX_ERROR_LENGTH - 1] + "…"


async def record_sent(
    row: OutboxMessage, invitation_id: int | None, *, clock: Clock
) -> DeliveryOutcome:
    now = clock.now()
    async with in_transaction() as connection:
        marked = (
            await OutboxMessage.filter(id=row.id, sent_at__isnull=True)
            .using_db(connection)
            .update(sent_at=now, last_error=None)
        )
        if marked == 1 and invitation_id is not None:
            await (
                Invitation.filter(id=invitation_id)
                .using_db(connection)
                .update(
                    sent_at=now,
                    delivery_attempts=F("delivery_attempts") + 1,
                    last_delivery_error=None,
                )
            )
    log.info("outbox %s: %s sent (attempt %s)", row.id, row.kind, row.attempts)
    return DeliveryOutcome(row.id, DeliveryStatus.SENT)


async def record_skipped(row: OutboxMessage, reason: str, *, clock: Clock) -> DeliveryOutcome:
    now = clock.now()
    async with in_transaction() as connection:
        await (
            OutboxMessage.filter(id=row.id, sent_at__isnull=True, failed_at__isnull=True)
            .using_db(connection)
            .update(sent_at=now, last_error=cut(f"not sent: {reason}"))
        )
    log.info("outbox %s: %s not sent: %s", row.id, row.kind, reason)
    return DeliveryOutcome(row.id, DeliveryStatus.SKIPPED, detail=reason)


async def record_failure(
    row: OutboxMessage,
    invitation_id: int | None,
    error: DeliveryError,
    *,
    clock: Clock,
    policy: DeliveryPolicy,
) -> DeliveryOutcome:
    now = clock.now()
    message = cut(str(error))
    give_up = error.permanent or row.attempts >= policy.max_attempts
    retry_at = None if give_up else now + policy.backoff(row.attempts)
    changes: dict[str, Any] = {"last_error": message}
    if give_up:
        changes["failed_at"] = now
    else:
        changes["available_at"] = retry_at
    async with in_transaction() as connection:
        # Only the claim that made this attempt records it: a stale worker
        # whose lease ran out must not overwrite a newer attempt's result.
        recorded = (
            await OutboxMessage.filter(
                id=row.id, attempts=row.attempts, sent_at__isnull=True, failed_at__isnull=True
            )
            .using_db(connection)
            .update(**changes)
        )
        if recorded == 1 and invitation_id is not None:
            await (
                Invitation.filter(id=invitation_id)
                .using_db(connection)
                .update(
                    delivery_attempts=F("delivery_attempts") + 1,
                    last_delivery_error=message,
                )
            )
    if give_up:
        why = "refused for good" if error.permanent else f"gave up after {row.attempts} attempts"
        log.error("outbox %s: %s %s: %s", row.id, row.kind, why, message)
        return DeliveryOutcome(row.id, DeliveryStatus.FAILED, detail=message)
    log.warning(
        "outbox %s: %s attempt %s failed, next at %s: %s",
        row.id,
        row.kind,
        row.attempts,
        retry_at.isoformat() if retry_at else "?",
        message,
    )
    return DeliveryOutcome(row.id, DeliveryStatus.RETRY, detail=message, retry_at=retry_at)
