"""`licenses scheduler`: enqueue the periodic jobs every SCHEDULER_INTERVAL_SECONDS.

It only sends `run_periodic(job)` messages; workers run them. Every job is
idempotent and safe to run twice at once (conditional updates, row locks,
unique constraints), so two schedulers, a restarted scheduler, or a manual
`licenses billing run` at the same time do no harm: at worst a job runs
twice and the second run finds nothing to do. Run one scheduler; a second
one for availability is allowed.

While Redis is unreachable the scheduler logs and keeps trying every
interval. Messages older than 10 minutes are dropped by the workers (the
next interval sends fresh ones), so a backlog does not pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from domain.settings import Settings
from workers.broker import close_broker, configure_broker, enqueue_periodic
from workers.jobs import PERIODIC_JOBS

log = logging.getLogger(__name__)


async def run_scheduler(
    settings: Settings,
    *,
    stop_event: asyncio.Event | None = None,
    interval_seconds: float | None = None,
) -> None:
    """Enqueue every periodic job now, then every interval, until `stop_event`."""
    if settings.redis_url is None:
        raise ValueError("the scheduler needs REDIS_URL")
    interval = (
        interval_seconds if interval_seconds is not None else settings.scheduler_interval_seconds
    )
    stop = stop_event or asyncio.Event()
    if stop_event is None:
        _stop_on_signals(stop)
    await asyncio.to_thread(configure_broker, settings.redis_url)
    log.info("scheduler started: %s every %ss", ", ".join(PERIODIC_JOBS), interval)
    try:
        while not stop.is_set():
            await enqueue_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
    finally:
        await asyncio.to_thread(close_broker)
        log.info("scheduler stopped")


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM/SIGINT end the loop after the current round (main thread only)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)


async def enqueue_all() -> int:
    """Send one run_periodic message per job; returns how many were sent."""
    sent = 0
    for job in PERIODIC_JOBS:
        try:
            await enqueue_periodic(job)
            sent += 1
        except Exception as exc:
            log.warning("scheduler: cannot enqueue %s (%s); next interval", job, exc)
    return sent
