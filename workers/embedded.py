"""Embedded mode (no REDIS_URL): the jobs run on the API server's own event loop.

`EmbeddedRunner` is started and stopped by the server's lifespan, after the
database is open:

- after each commit, the new outbox rows are delivered by asyncio tasks on
  this loop (at most `max_concurrency` at once; beyond `max_pending` waiting
  rows, the periodic pass picks them up instead);
- every EMBEDDED_RELAY_SECONDS, due rows are delivered in one batch over one
  connection: retries after a failure, and rows committed by another process
  (the `licenses` CLI on the same SQLite file) arrive within that period;
- every SCHEDULER_INTERVAL_SECONDS, invitation expiry, period end and pruning.

Nothing here needs Redis or another process. The job functions are the same
ones the Dramatiq actors call, so both modes behave alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from domain.clock import SYSTEM_CLOCK, Clock
from domain.settings import Settings
from domain.uow import set_outbox_dispatcher
from workers.jobs import EMBEDDED_PERIODIC_JOBS, run_periodic_jobs
from workers.mail import mailer_from_url
from workers.mail.message import Mailer
from workers.outbox.delivery import deliver_due_messages, deliver_outbox_message
from workers.outbox.policy import DeliveryPolicy
from workers.outbox.results import DeliveryOutcome
from workers.webhooks.sending import close_clients as close_webhook_clients

log = logging.getLogger(__name__)


class EmbeddedRunner:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock = SYSTEM_CLOCK,
        mailer: Mailer | None = None,
        policy: DeliveryPolicy | None = None,
        max_concurrency: int = 4,
        max_pending: int = 1000,
        batch_limit: int = 100,
        relay_seconds: float | None = None,
        scheduler_seconds: float | None = None,
        stop_timeout_seconds: float = 30.0,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.mailer = mailer if mailer is not None else mailer_from_url(settings.mail_url)
        self.policy = policy if policy is not None else DeliveryPolicy.from_settings(settings)
        self.max_pending = max_pending
        self.batch_limit = batch_limit
        self.relay_seconds = (
            relay_seconds if relay_seconds is not None else settings.embedded_relay_seconds
        )
        self.scheduler_seconds = (
            scheduler_seconds
            if scheduler_seconds is not None
            else settings.scheduler_interval_seconds
        )
        self.stop_timeout_seconds = stop_timeout_seconds
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._deliveries: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._running = False
        self._stopping = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._stopping = asyncio.Event()
        set_outbox_dispatcher(self.dispatch)
        self._loops = [
            asyncio.create_task(
                self._every(self.relay_seconds, self.deliver_due), name="embedded-outbox"
            ),
            asyncio.create_task(
                self._every(self.scheduler_seconds, self.run_jobs), name="embedded-scheduler"
            ),
        ]
        log.info(
            "embedded jobs started: outbox every %ss, periodic jobs every %ss, mail to %r",
            self.relay_seconds,
            self.scheduler_seconds,
            self.mailer,
        )

    async def stop(self) -> None:
        """Stop the loops and let the work in progress finish: a periodic pass
        or a delivery is not cut in the middle of a transaction. What is
        still running after the stop timeout is cancelled (a delivery cut
        short is sent again once its lease has passed)."""
        if not self._running:
            return
        self._running = False
        set_outbox_dispatcher(None)
        self._stopping.set()
        in_progress = {*self._loops, *self._deliveries}
        if in_progress:
            _, late = await asyncio.wait(in_progress, timeout=self.stop_timeout_seconds)
            for task in late:
                log.warning("embedded jobs: cancelling %s after the stop timeout", task.get_name())
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._loops = []
        await self.mailer.aclose()
        await close_webhook_clients()
        log.info("embedded jobs stopped")

    async def dispatch(self, ids: Sequence[int]) -> None:
        """The after-commit dispatcher: deliver in the background, return at once."""
        if not self._running:
            return
        for message_id in ids:
            if len(self._deliveries) >= self.max_pending:
                # The periodic pass sends the rest; memory stays bounded.
                log.warning("embedded outbox: %s deliveries waiting, deferring", self.max_pending)
                return
            task = asyncio.create_task(self._deliver(message_id))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, message_id: int) -> None:
        async with self._semaphore:
            try:
                await deliver_outbox_message(
                    message_id,
                    mailer=self.mailer,
                    clock=self.clock,
                    settings=self.settings,
                    policy=self.policy,
                )
            except Exception:
                # The row stays undelivered; the periodic pass retries it.
                log.exception("embedded outbox: delivery of %s failed", message_id)

    async def deliver_due(self) -> list[DeliveryOutcome]:
        """One pass: every due row, in batches of `batch_limit` per connection."""
        outcomes: list[DeliveryOutcome] = []
        while True:
            async with self._semaphore:
                batch = await deliver_due_messages(
                    limit=self.batch_limit,
                    mailer=self.mailer,
                    clock=self.clock,
                    settings=self.settings,
                    policy=self.policy,
                )
            outcomes.extend(batch)
            if len(batch) < self.batch_limit or self._stopping.is_set():
                return outcomes

    async def run_jobs(self) -> dict[str, object]:
        return await run_periodic_jobs(clock=self.clock, names=EMBEDDED_PERIODIC_JOBS)

    async def _every(self, seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        while not self._stopping.is_set():
            try:
                await job()
            except Exception:
                log.exception("embedded job %s failed; next run in %ss", job.__name__, seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
