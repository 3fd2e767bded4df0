"""Delivering claimed rows: one message within its lease, or a batch over one
connection; each result is recorded as soon as the mail server answers."""

from __future__ import annotations

import asyncio
import logging

from domain.clock import Clock
from domain.emails import PayloadError
from domain.enums import WEBHOOK_OUTBOX_KIND
from domain.models import OutboxMessage
from domain.settings import Settings
from workers.mail.message import DeliveryError, Mailer
from workers.outbox.claim import claim_due, claim_one
from workers.outbox.compose import Prepared, Skip, prepare_email
from workers.outbox.policy import DEFAULT_POLICY, DeliveryPolicy
from workers.outbox.results import (
    DeliveryOutcome,
    DeliveryStatus,
    record_failure,
    record_sent,
    record_skipped,
)
from workers.webhooks.sending import deliver_webhook

log = logging.getLogger(__name__)


async def deliver_outbox_message(
    message_id: int,
    *,
    mailer: Mailer,
    clock: Clock,
    settings: Settings,
    policy: DeliveryPolicy = DEFAULT_POLICY,
) -> DeliveryOutcome:
    """Send one outbox row if it is due and unsent; idempotent."""
    # Taken before the claim, so the claim's own round trip counts too.
    deadline = asyncio.get_running_loop().time() + policy.send_budget.total_seconds()
    now = clock.now()
    claimed, row = await claim_one(message_id, now, policy)
    if row is None:
        return DeliveryOutcome(message_id, DeliveryStatus.MISSING)
    if not claimed:
        if row.sent_at is not None or row.failed_at is not None:
            return DeliveryOutcome(message_id, DeliveryStatus.ALREADY_DONE)
        return DeliveryOutcome(message_id, DeliveryStatus.NOT_DUE, retry_at=row.available_at)
    if row.kind == WEBHOOK_OUTBOX_KIND:
        # Its own 10 s limit sits well inside the send budget.
        return await deliver_webhook(row, clock=clock, settings=settings, policy=policy)
    prepared = await _prepare_or_close(row, settings=settings, clock=clock, policy=policy)
    if isinstance(prepared, DeliveryOutcome):
        return prepared
    try:
        async with asyncio.timeout_at(deadline):
            await mailer.send(prepared.email)
    except DeliveryError as exc:
        return await record_failure(row, prepared.invitation_id, exc, clock=clock, policy=policy)
    except TimeoutError:
        error = DeliveryError(
            f"send not finished within {policy.send_budget.total_seconds():g} s "
            "(OUTBOX_LEASE_SECONDS less a margin)",
            permanent=False,
        )
        return await record_failure(row, prepared.invitation_id, error, clock=clock, policy=policy)
    except Exception as exc:  # a mailer bug must not leave the row claimed forever
        log.exception("outbox %s: unexpected error while sending", row.id)
        error = DeliveryError(f"unexpected error: {exc!r}", permanent=False)
        return await record_failure(row, prepared.invitation_id, error, clock=clock, policy=policy)
    return await record_sent(row, prepared.invitation_id, clock=clock)


async def deliver_due_messages(
    *,
    limit: int = 100,
    mailer: Mailer,
    clock: Clock,
    settings: Settings,
    policy: DeliveryPolicy = DEFAULT_POLICY,
) -> list[DeliveryOutcome]:
    """Claim up to `limit` due rows and send them over one SMTP connection."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    rows = await claim_due(limit, clock.now(), policy)
    outcomes: list[DeliveryOutcome] = []
    ready: list[tuple[OutboxMessage, Prepared]] = []
    webhooks = [row for row in rows if row.kind == WEBHOOK_OUTBOX_KIND]
    if webhooks:
        outcomes.extend(
            await asyncio.gather(
                *(
                    deliver_webhook(row, clock=clock, settings=settings, policy=policy)
                    for row in webhooks
                )
            )
        )
    for row in rows:
        if row.kind == WEBHOOK_OUTBOX_KIND:
            continue
        prepared = await _prepare_or_close(row, settings=settings, clock=clock, policy=policy)
        if isinstance(prepared, DeliveryOutcome):
            outcomes.append(prepared)
        else:
            ready.append((row, prepared))
    if not ready:
        return outcomes
    try:
        results = await mailer.send_batch([prepared.email for _, prepared in ready])
    except Exception as exc:
        log.exception("outbox: unexpected error while sending a batch")
        results = [DeliveryError(f"unexpected error: {exc!r}", permanent=False) for _ in ready]
    for (row, prepared), error in zip(ready, results, strict=True):
        if error is None:
            outcomes.append(await record_sent(row, prepared.invitation_id, clock=clock))
        else:
            outcomes.append(
                await record_failure(row, prepared.invitation_id, error, clock=clock, policy=policy)
            )
    return outcomes


async def _prepare_or_close(
    row: OutboxMessage, *, settings: Settings, clock: Clock, policy: DeliveryPolicy
) -> Prepared | DeliveryOutcome:
    """The email to send, or the outcome when there is nothing to send."""
    try:
        prepared = await prepare_email(row, settings=settings, now=clock.now())
    except PayloadError as exc:
        error = DeliveryError(f"cannot build the email: {exc}", permanent=True)
        return await record_failure(row, None, error, clock=clock, policy=policy)
    except Exception as exc:
        if _is_database_error(exc):
            raise
        # A rendering bug: retried with backoff, so a fix deployed in time
        # still sends it.
        log.exception("outbox %s: cannot render the email", row.id)
        error = DeliveryError(f"cannot render the email: {exc!r}", permanent=False)
        return await record_failure(row, None, error, clock=clock, policy=policy)
    if isinstance(prepared, Skip):
        return await record_skipped(row, prepared.reason, clock=clock)
    return prepared


def _is_database_error(exc: Exception) -> bool:
    module = type(exc).__module__
    return module.startswith(("tortoise", "asyncpg", "sqlite3", "aiosqlite")) or isinstance(
        exc, OSError
    )
