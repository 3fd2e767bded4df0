"""The periodic jobs, as plain coroutines shared by Dramatiq and embedded mode.

Each job is idempotent and safe to run on several processes at once, so two
schedulers (or a scheduler plus a manual `licenses billing run`) do no harm:

- relay: enqueue outbox rows nobody enqueued lately (see workers.outbox);
- expire_invitations: PENDING invitations past expiry become EXPIRED, their
  licences released (domain.services.invitations);
- period_end: close ended billing periods (domain.services.billing);
- renewal_notice: tell owners of the renewal RENEWAL_NOTICE_DAYS ahead
  (domain.services.renewal_notice);
- reclaim: the reclaim policies' notices and releases (domain.services.reclaim);
- prune: delete rate-limit records, idempotency records past their 24 h and
  outbox rows sent more than OUTBOX_KEEP_SENT ago.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from domain.clock import Clock
from domain.models import OutboxMessage
from workers.outbox.policy import DEFAULT_POLICY, DeliveryPolicy
from workers.outbox.relay import Enqueue, relay_outbox

log = logging.getLogger(__name__)

RELAY = "relay"
EXPIRE_INVITATIONS = "expire_invitations"
PERIOD_END = "period_end"
PRUNE = "prune"
RENEWAL_NOTICE = "renewal_notice"
RECLAIM = "reclaim"
PERIODIC_JOBS: tuple[str, ...] = (
    RELAY,
    EXPIRE_INVITATIONS,
    PERIOD_END,
    RENEWAL_NOTICE,
    RECLAIM,
    PRUNE,
)
# Embedded mode delivers due rows itself (more often), so it needs no relay.
EMBEDDED_PERIODIC_JOBS: tuple[str, ...] = tuple(job for job in PERIODIC_JOBS if job != RELAY)

# Sent rows are history only; failed and undelivered rows are never pruned.
OUTBOX_KEEP_SENT = timedelta(days=30)


class UnknownJobError(ValueError):
    pass


async def run_periodic_job(
    name: str,
    *,
    clock: Clock,
    enqueue: Enqueue | None = None,
    policy: DeliveryPolicy = DEFAULT_POLICY,
) -> object:
    """Run one periodic job by name and return its result (a count or report)."""
    if name == RELAY:
        if enqueue is None:
            raise ValueError("the relay job needs an enqueue function")
        return await relay_outbox(clock=clock, enqueue=enqueue, policy=policy)
    if name == EXPIRE_INVITATIONS:
        from domain.services.invitations import expire_invitations  # noqa: PLC0415

        return await expire_invitations(clock=clock)
    if name == PERIOD_END:
        from domain.services.billing import run_period_end  # noqa: PLC0415

        report = await run_period_end(clock=clock)
        if report.failed_account_ids:
            log.error("period end failed for accounts %s", list(report.failed_account_ids))
        return report
    if name == RENEWAL_NOTICE:
        from domain.services.renewal_notice import send_renewal_notices  # noqa: PLC0415

        return await send_renewal_notices(clock=clock)
    if name == RECLAIM:
        from domain.services.reclaim import run_reclaim  # noqa: PLC0415

        reclaimed = await run_reclaim(clock=clock)
        if reclaimed.failed_account_ids:
            log.error("reclaim failed for accounts %s", list(reclaimed.failed_account_ids))
        return reclaimed
    if name == PRUNE:
        return await prune(clock=clock)
    raise UnknownJobError(f"unknown periodic job {name!r}; known: {', '.join(PERIODIC_JOBS)}")


async def prune(*, clock: Clock) -> dict[str, int]:
    from domain.services.auth import prune_login_failures  # noqa: PLC0415
    from domain.services.retention import prune_idempotency_records  # noqa: PLC0415

    return {
        "login_failures": await prune_login_failures(clock=clock),
        "idempotency_records": await prune_idempotency_records(clock=clock),
        "outbox_messages": await OutboxMessage.filter(
            sent_at__lte=clock.now() - OUTBOX_KEEP_SENT
        ).delete(),
    }


async def run_periodic_jobs(
    *,
    clock: Clock,
    enqueue: Enqueue | None = None,
    names: Sequence[str] = PERIODIC_JOBS,
    policy: DeliveryPolicy = DEFAULT_POLICY,
) -> dict[str, object]:
    """Run several jobs one after the other; a failing job is logged and does
    not stop the others (it runs again next time). Returns each job's result
    (the exception for a job that failed)."""
    results: dict[str, object] = {}
    for name in names:
        if name == RELAY and enqueue is None:
            continue
        try:
            results[name] = await run_periodic_job(
                name, clock=clock, enqueue=enqueue, policy=policy
            )
        except UnknownJobError:
            raise
        except Exception as exc:
            log.exception("periodic job %s failed", name)
            results[name] = exc
        else:
            log.debug("periodic job %s: %s", name, results[name])
    return results
