"""Production wiring: the Redis broker, the messages we send, the worker's boot.

Messages carry ids only. They are built here by actor NAME, so the API
process and the scheduler never import `workers.actors` (whose decorators
bind to the broker at import time): they call `configure_broker(url)` and
then `enqueue_outbox(ids)` / `enqueue_periodic(job)`.

A worker process calls `setup_worker_broker()` (dramatiq's CLI does, see
workers.worker_main) before importing `workers.actors`. Its `WorkerBoot`
middleware, added after `AsyncIO`, configures the domain (secret key, public
URL) and opens the database on the AsyncIO event-loop thread before any
worker thread starts, and closes it after the last message has finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
from dramatiq import Message, Worker
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.broker import Broker, set_broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO, Middleware

from domain.clock import SYSTEM_CLOCK, Clock
from domain.db import close_database, init_database
from domain.settings import Settings, configure_domain
from domain.uow import set_outbox_dispatcher
from workers.mail import mailer_from_url
from workers.mail.message import Mailer
from workers.outbox.policy import DeliveryPolicy
from workers.outbox.relay import mark_enqueued

log = logging.getLogger(__name__)

EMAIL_QUEUE = "emails"
PERIODIC_QUEUE = "periodic"
DELIVER_EMAIL = "deliver_email"
RUN_PERIODIC = "run_periodic"

# Connection timeouts: an unreachable Redis fails a send in seconds (the
# relay sends it later) instead of hanging a request.
_REDIS_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 5,
    "socket_timeout": 30,
    "health_check_interval": 30,
}

_broker: RedisBroker | None = None


def configure_broker(redis_url: str, *, worker_settings: Settings | None = None) -> RedisBroker:
    """Create the process's Redis broker and make it Dramatiq's global one.

    `worker_settings` is for worker processes only: it adds the boot
    middleware that opens the database on the event-loop thread.
    """
    global _broker  # noqa: PLW0603 - one broker per process, set at start
    pool = redis.ConnectionPool.from_url(redis_url, **_REDIS_OPTIONS)
    broker = RedisBroker(client=redis.Redis(connection_pool=pool))  # type: ignore[no-untyped-call]
    broker.add_middleware(AsyncIO())
    if worker_settings is not None:
        broker.add_middleware(WorkerBoot(worker_settings))
    for queue in (EMAIL_QUEUE, PERIODIC_QUEUE):
        broker.declare_queue(queue)
    set_broker(broker)
    _broker = broker
    return broker


def current_broker() -> RedisBroker:
    if _broker is None:
        raise RuntimeError("no broker: call workers.broker.configure_broker(REDIS_URL) first")
    return _broker


def close_broker() -> None:
    global _broker  # noqa: PLW0603
    if _broker is not None:
        _broker.close()
        _broker = None


# ---------------------------------------------------------------------------
# Sending (blocking calls; the async wrappers run them in a thread)


def send_delivery_messages(ids: Sequence[int], *, delay: timedelta | None = None) -> None:
    broker = current_broker()
    delay_ms = max(int(delay.total_seconds() * 1000), 0) if delay is not None else None
    for message_id in ids:
        broker.enqueue(_message(EMAIL_QUEUE, DELIVER_EMAIL, int(message_id)), delay=delay_ms)


def send_periodic(job: str) -> None:
    current_broker().enqueue(_message(PERIODIC_QUEUE, RUN_PERIODIC, job))


def _message(queue: str, actor: str, argument: object) -> Message[Any]:
    return Message(queue_name=queue, actor_name=actor, args=(argument,), kwargs={}, options={})


async def enqueue_delivery(ids: Sequence[int]) -> None:
    """Send deliver_email messages; raises when Redis is unreachable."""
    if ids:
        await asyncio.to_thread(send_delivery_messages, list(ids))


async def enqueue_outbox(ids: Sequence[int]) -> None:
    """The after-commit dispatcher of API and worker processes.

    Raises when Redis is unreachable: domain.uow logs it and the relay sends
    the rows later. On success the rows are marked enqueued, so the relay
    leaves them alone for `DeliveryPolicy.redeliver_after`.
    """
    await enqueue_delivery(ids)
    await mark_enqueued(ids, at=SYSTEM_CLOCK.now())


async def enqueue_periodic(job: str) -> None:
    await asyncio.to_thread(send_periodic, job)


async def schedule_retry(message_id: int, retry_at: datetime, *, clock: Clock) -> None:
    """A delayed deliver_email for a row pushed back after a failure; the
    relay is the safety net when Redis loses it."""
    delay = max(retry_at - clock.now(), timedelta(0))
    await asyncio.to_thread(send_delivery_messages, [message_id], delay=delay)
    # The relay leaves it alone until redeliver_after past the retry's due time.
    await mark_enqueued([message_id], at=retry_at)


class ProductionDispatch:
    """What an API process runs in production (REDIS_URL set): outbox rows
    go to Dramatiq after each commit. Used by the server's lifespan."""

    def __init__(self, *, settings: Settings) -> None:
        if settings.redis_url is None:
            raise ValueError("ProductionDispatch needs REDIS_URL")
        self.settings = settings

    async def start(self) -> None:
        assert self.settings.redis_url is not None
        configure_broker(self.settings.redis_url)
        set_outbox_dispatcher(enqueue_outbox)

    async def stop(self) -> None:
        set_outbox_dispatcher(None)
        await asyncio.to_thread(close_broker)


# ---------------------------------------------------------------------------
# Worker processes


@dataclass
class WorkerRuntime:
    settings: Settings
    mailer: Mailer
    policy: DeliveryPolicy
    clock: Clock = SYSTEM_CLOCK
    database_ready: bool = False
    _lock: asyncio.Lock | None = field(default=None, repr=False)

    async def ready(self) -> WorkerRuntime:
        """Opens the database if the boot could not (e.g. it was down then)."""
        if self.database_ready:
            return self
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self.database_ready:
                await init_database(self.settings.database_url)
                self.database_ready = True
        return self


_runtime: WorkerRuntime | None = None


async def worker_runtime() -> WorkerRuntime:
    """The settings, mailer and policy of this worker process, database open."""
    if _runtime is None:
        raise RuntimeError("this process was not booted as a worker (no WorkerBoot middleware)")
    return await _runtime.ready()


class WorkerBoot(Middleware):
    """Added after AsyncIO: runs its hooks on the worker's event-loop thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        global _runtime  # noqa: PLW0603 - one runtime per worker process
        # The same secret key as the API, or the links would not work.
        configure_domain(self.settings)
        _runtime = WorkerRuntime(
            settings=self.settings,
            mailer=mailer_from_url(self.settings.mail_url),
            policy=DeliveryPolicy.from_settings(self.settings),
        )
        # Jobs that commit outbox rows (expiry, period end) enqueue them too.
        set_outbox_dispatcher(enqueue_outbox)
        runtime = _runtime
        try:
            _loop_thread().run_coroutine(runtime.ready())
        except Exception:
            # The actors open it on first use; their messages are retried.
            log.exception("worker boot: cannot open the database; will retry on first job")
        else:
            log.info("worker boot: database open, mail via %r", runtime.mailer)

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        # Runs before AsyncIO's (after_* hooks go in reverse order): the
        # loop is still there, and every message has finished.
        runtime = _runtime
        if runtime is None:
            return
        loop_thread = _loop_thread()
        loop_thread.run_coroutine(runtime.mailer.aclose())
        if runtime.database_ready:
            loop_thread.run_coroutine(close_database())
            runtime.database_ready = False


def _loop_thread() -> Any:
    thread = get_event_loop_thread()
    if thread is None:
        raise RuntimeError("the AsyncIO middleware must come before WorkerBoot")
    return thread


# Set by run_worker() before dramatiq forks its worker processes.
_worker_settings: Settings | None = None


def remember_worker_settings(settings: Settings) -> None:
    global _worker_settings  # noqa: PLW0603
    _worker_settings = settings


def setup_worker_broker() -> None:
    """Called by dramatiq's CLI in each worker process, before `workers.actors`."""
    settings = _worker_settings or Settings.from_env()
    if settings.redis_url is None:
        raise RuntimeError("REDIS_URL is not set: workers need a broker")
    configure_broker(settings.redis_url, worker_settings=settings)
