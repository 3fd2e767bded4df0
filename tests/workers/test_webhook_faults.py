"""Webhooks under faults, in production's shape: real Redis, real Dramatiq
worker processes, a real receiver on loopback. Whatever fails, every event
arrives at least once, always under its own webhook-id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest

from domain import config
from domain.clock import FixedClock
from domain.models import WebhookDelivery, WebhookEvent
from domain.principal import Principal
from domain.services.invitations import invite_user
from domain.services.webhooks import create_webhook_endpoint
from domain.settings import Settings
from domain.uow import set_outbox_dispatcher
from tests.support.delivery import WorkerProcess, wait_until, worker_environment
from tests.support.factories import make_account
from tests.support.local_services import RedisServer
from tests.support.principals import owner_principal
from tests.support.smtp import SmtpServer
from tests.support.webhook_receiver import WebhookReceiver
from workers.broker import close_broker, configure_broker, enqueue_outbox
from workers.scheduler import run_scheduler

pytestmark = pytest.mark.anyio

EVENTS = 20


@pytest.fixture(autouse=True)
def development_urls(domain_config: config.DomainConfig) -> None:
    config.configure_with(webhook_development=True)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


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


@pytest.fixture
def worker_env(db: str, redis_server: RedisServer, smtp: SmtpServer) -> dict[str, str]:
    return worker_environment(
        database_url=db,
        redis_url=redis_server.url,
        mail_url=smtp.url,
        OUTBOX_LEASE_SECONDS="2",
        # The relay hands a message lost with a killed worker over again
        # after half an interval.
        SCHEDULER_INTERVAL_SECONDS="1",
        WEBHOOK_RETRY_SCHEDULE="1,1,1,1,1,1,1,1,1,1",
    )


@pytest.fixture
async def owner_with_endpoint(
    db: str, real_now_clock: FixedClock, receiver: WebhookReceiver
) -> Principal:
    created = await make_account(real_now_clock, seats=EVENTS + 1)
    owner = owner_principal(created.account_id, created.owner_user_id)
    await create_webhook_endpoint(actor=owner, url=receiver.url, clock=real_now_clock)
    return owner


async def invite_many(owner: Principal, clock: FixedClock) -> set[str]:
    for n in range(EVENTS):
        await invite_user(
            actor=owner, email=f"u{n}@example.com", first_name="U", last_name=str(n), clock=clock
        )
    return set(await WebhookEvent.all().values_list("id", flat=True))


async def all_tried() -> bool:
    return await WebhookDelivery.filter(attempts__gte=1).count() == EVENTS


def accepted_ids(receiver: WebhookReceiver) -> set[str]:
    return {r.webhook_id for r in receiver.accepted()}


async def test_given_redis_down_while_events_are_committed_when_it_is_back_then_every_event_arrives(
    redis_server, worker_env, worker_log, dispatching, receiver, owner_with_endpoint, real_now_clock
):
    worker = WorkerProcess(worker_env, worker_log).start()
    try:
        redis_server.stop()
        events = await invite_many(owner_with_endpoint, real_now_clock)
        redis_server.start()  # same port, empty: nothing was queued
        async with scheduler_running(redis_server.url):
            await wait_until(
                lambda: accepted_ids(receiver) == events, within=30, what="every event"
            )
    finally:
        worker.stop()

    assert len(events) == EVENTS
    assert await WebhookDelivery.filter(status="SUCCEEDED").count() == EVENTS


async def test_given_a_worker_killed_mid_stream_when_another_takes_over_then_every_event_arrives_under_its_webhook_id(  # noqa: E501
    redis_server, worker_env, worker_log, dispatching, receiver, owner_with_endpoint, real_now_clock
):
    receiver.delay = 0.25
    first = WorkerProcess(worker_env, worker_log, threads=2).start()
    second = WorkerProcess(worker_env, worker_log, threads=4)
    try:
        events = await invite_many(owner_with_endpoint, real_now_clock)
        await wait_until(lambda: len(receiver.received) >= 3, within=15, what="a few events")
        first.kill()
        assert len(accepted_ids(receiver)) < EVENTS, "the worker finished before it was killed"
        receiver.delay = 0
        second.start()
        async with scheduler_running(redis_server.url):
            await wait_until(
                lambda: accepted_ids(receiver) == events, within=30, what="every event"
            )
    finally:
        first.kill()
        second.stop()

    assert {r.webhook_id for r in receiver.received} == events


async def test_given_a_receiver_down_then_answering_500_when_it_recovers_then_the_retries_deliver_every_event(  # noqa: E501
    redis_server, worker_env, worker_log, dispatching, receiver, owner_with_endpoint, real_now_clock
):
    worker = WorkerProcess(worker_env, worker_log).start()
    try:
        receiver.stop()
        events = await invite_many(owner_with_endpoint, real_now_clock)
        async with scheduler_running(redis_server.url):
            await wait_until(all_tried, within=20, what="a first attempt of each")
            receiver.start()
            receiver.status = 500
            await wait_until(lambda: len(receiver.received) >= EVENTS, within=20, what="500s")
            receiver.status = 200
            await wait_until(
                lambda: accepted_ids(receiver) == events, within=30, what="every event"
            )
    finally:
        worker.stop()

    assert await WebhookDelivery.filter(status="SUCCEEDED").count() == EVENTS
