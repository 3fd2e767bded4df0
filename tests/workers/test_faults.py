"""Faults in production mode, with real processes: Redis down while emails
are committed, and a worker killed in the middle of a batch. No email may be
lost; duplicates only where the design says they can happen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis

from domain.clock import SYSTEM_CLOCK, FixedClock
from domain.models import OutboxMessage
from domain.settings import Settings
from domain.uow import set_outbox_dispatcher
from tests.support.delivery import WorkerProcess, wait_until, worker_environment
from tests.support.factories import make_account
from tests.support.local_services import RedisServer
from tests.support.smtp import SmtpCatcher, SmtpServer
from workers.broker import close_broker, configure_broker, enqueue_outbox
from workers.scheduler import run_scheduler

pytestmark = pytest.mark.anyio

EMAILS = 20
# Short enough for a test: rows held by a dead worker are claimable again,
# and enqueued rows relayed again, after this many seconds.
LEASE_SECONDS = "2"


@pytest.fixture
async def dispatching(redis_server: RedisServer) -> AsyncIterator[None]:
    configure_broker(redis_server.url)
    set_outbox_dispatcher(enqueue_outbox)
    yield
    set_outbox_dispatcher(None)
    close_broker()


@asynccontextmanager
async def scheduler_running(redis_url: str) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_scheduler(Settings(redis_url=redis_url), stop_event=stop, interval_seconds=1)
    )
    try:
        yield
    finally:
        stop.set()
        await task


async def create_accounts(clock: FixedClock, count: int) -> None:
    for n in range(count):
        await make_account(clock, email=f"owner{n}@example.com", name=f"Account {n}")


@pytest.fixture
def worker_env(db: str, redis_server: RedisServer, smtp: SmtpServer) -> dict[str, str]:
    return worker_environment(
        database_url=db,
        redis_url=redis_server.url,
        mail_url=smtp.url,
        OUTBOX_LEASE_SECONDS=LEASE_SECONDS,
    )


@pytest.fixture
def worker(worker_env: dict[str, str], worker_log: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(worker_env, worker_log).start()
    yield process
    process.stop()


async def test_given_redis_down_while_20_emails_are_committed_when_it_is_back_then_each_arrives_exactly_once(  # noqa: E501
    db, redis_server, worker, dispatching, smtp, real_now_clock
):
    redis_server.stop()
    # Each commit's hand-off fails (logged); the rows are committed anyway.
    await create_accounts(real_now_clock, EMAILS)
    assert await OutboxMessage.filter(enqueued_at__isnull=True).count() == EMAILS

    redis_server.start()  # same port, empty: nothing was queued
    async with scheduler_running(redis_server.url):
        await wait_until(lambda: len(smtp.message_ids()) == EMAILS, within=20, what="every email")
        # Give duplicates, if any, the time to show up.
        await asyncio.sleep(1.5)

    assert sorted(smtp.message_ids().values()) == [1] * EMAILS
    assert await OutboxMessage.filter(sent_at__isnull=True).count() == 0


async def test_given_a_worker_killed_mid_batch_when_another_worker_takes_over_then_every_email_arrives(  # noqa: E501
    db, redis_server, worker_env, worker_log, dispatching, real_now_clock
):
    handler = SmtpCatcher(delay_seconds=0.25)
    smtp = SmtpServer(handler).start()
    worker_env = {**worker_env, "MAIL_URL": smtp.url}
    first = WorkerProcess(worker_env, worker_log, threads=2).start()
    second = WorkerProcess(worker_env, worker_log, threads=4)
    try:
        await create_accounts(real_now_clock, EMAILS)
        await wait_until(lambda: len(handler.received) >= 4, within=15, what="a few emails")

        first.kill()
        await asyncio.sleep(0.5)  # let the SMTP server finish reading what was sent
        accepted_at_kill = set(smtp.message_ids())
        recorded_at_kill = {
            f"<outbox-{row_id}@licenses.test>"
            for row_id in await OutboxMessage.filter(sent_at__isnull=False).values_list(
                "id", flat=True
            )
        }
        assert len(accepted_at_kill) < EMAILS, "the worker finished before it was killed"

        second.start()
        async with scheduler_running(redis_server.url):
            # Generous: a second worker process starting on a loaded machine
            # takes seconds, and the killed one's claims wait out their lease.
            await wait_until(
                lambda: len(smtp.message_ids()) == EMAILS, within=60, what="every email"
            )
            await asyncio.sleep(1.5)
    finally:
        first.kill()
        second.stop()
        smtp.stop()

    counts = smtp.message_ids()
    duplicates = {message_id for message_id, count in counts.items() if count > 1}
    # The only duplicates possible: accepted by the SMTP server before the
    # kill, without sent_at committed.
    assert duplicates <= accepted_at_kill - recorded_at_kill
    assert max(counts.values()) <= 2
    assert await OutboxMessage.filter(sent_at__isnull=True).count() == 0


async def test_given_a_worker_killed_with_a_message_prefetched_but_not_started_when_another_worker_takes_over_then_that_email_leaves_long_before_the_lease_ends(  # noqa: E501
    db, redis_server, worker_env, worker_log, dispatching, real_now_clock
):
    # One thread prefetches two messages (Dramatiq's default: 2 per thread)
    # and works on one; the SMTP server holds that one's reply while the
    # worker is killed. The lease is far longer than the wait allowed below.
    handler = SmtpCatcher(delay_seconds=3)
    smtp = SmtpServer(handler).start()
    worker_env = {
        **worker_env,
        "MAIL_URL": smtp.url,
        "OUTBOX_LEASE_SECONDS": "600",
        "SCHEDULER_INTERVAL_SECONDS": "1",
    }
    first = WorkerProcess(worker_env, worker_log, threads=1)
    second = WorkerProcess(worker_env, worker_log, threads=1)
    broker_redis = redis.Redis.from_url(redis_server.url)
    try:
        # Both messages wait in Redis before the worker starts: its first
        # fetch takes them together.
        await create_accounts(real_now_clock, 2)
        assert broker_redis.llen("dramatiq:emails") == 2
        first.start()
        await wait_until(lambda: len(handler.received) == 1, within=15, what="the first DATA")
        first.kill()
        started, waiting = await OutboxMessage.all().order_by("-attempts", "id")
        # The scenario: one send started (claimed), one fetched by the dead
        # worker and never started (not claimed, no longer in the queue).
        assert (started.attempts, waiting.attempts) == (1, 0)
        assert broker_redis.llen("dramatiq:emails") == 0

        second.start()
        async with scheduler_running(redis_server.url):
            await wait_until(
                lambda: OutboxMessage.filter(id=waiting.id, sent_at__isnull=False).exists(),
                within=30,
                what="the email the dead worker never started",
            )
        started = await OutboxMessage.get(id=started.id)
    finally:
        first.kill()
        second.stop()
        smtp.stop()
        broker_redis.close()

    counts = smtp.message_ids()
    assert counts[f"<outbox-{waiting.id}@licenses.test>"] == 1
    # The started one is still leased: not sent again while its sender may
    # be alive, whatever the relay did meanwhile.
    assert counts[f"<outbox-{started.id}@licenses.test>"] == 1
    assert started.sent_at is None and started.available_at > SYSTEM_CLOCK.now()
