"""Webhooks, on demand: 1,000 events to one endpoint end to end (outbox ->
Redis -> Dramatiq worker processes -> signed POST -> a receiver on loopback)
against a raw httpx loop posting the same signed bodies to the same receiver.

    TEST_DATABASE_URL=postgres://... .venv/bin/python -m tests.benchmarks.webhooks

The events are committed first with no dispatcher (their rows wait); the
clock starts when their ids are sent to Redis, as the API would after each
commit, and stops when the receiver has accepted them all. Result: the
ratio pipeline/raw (events per second), to be recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from domain import config
from domain.clock import SYSTEM_CLOCK
from domain.db import close_database, init_database, migrate
from domain.enums import WEBHOOK_OUTBOX_KIND, WebhookEventType
from domain.models import OutboxMessage, WebhookEvent
from domain.services.webhooks import create_webhook_endpoint
from domain.uow import unit_of_work
from tests.support.database import TEST_SECRET_KEY, reset_postgres
from tests.support.delivery import WorkerProcess, wait_until, worker_environment
from tests.support.factories import make_account
from tests.support.local_services import RedisServer
from tests.support.principals import owner_principal
from tests.support.webhook_receiver import WebhookReceiver
from workers.broker import close_broker, configure_broker, enqueue_outbox
from workers.webhooks.signing import event_body, signed_headers

EVENTS = 1000
WORKERS = 2
THREADS = 4


async def _commit_events(owner_account: int) -> list[int]:
    # One transaction per event, as the services write them.
    for n in range(EVENTS):
        async with unit_of_work(SYSTEM_CLOCK.now()) as work:
            await work.webhook(
                account_id=owner_account,
                event_type=WebhookEventType.USER_UPDATED,
                data={"userId": str(n + 1)},
            )
    return list(
        await OutboxMessage.filter(kind=WEBHOOK_OUTBOX_KIND)
        .order_by("id")
        .values_list("id", flat=True)
    )


async def _raw_loop(url: str, secret: str, receiver: WebhookReceiver) -> float:
    events = await WebhookEvent.all().order_by("created_at")
    bodies = [event_body(event) for event in events]
    before = len(receiver.accepted())
    started = time.perf_counter()
    async with httpx.AsyncClient() as client:
        for event, body in zip(events, bodies, strict=True):
            headers = signed_headers(event.id, datetime.now(UTC), body, [secret])
            response = await client.post(url, content=body, headers=headers)
            response.raise_for_status()
    elapsed = time.perf_counter() - started
    assert len(receiver.accepted()) - before == len(events)
    return len(events) / elapsed


async def main() -> int:
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite://{tempfile.mkdtemp()}/bench.db"
    if url.startswith("postgres"):
        await reset_postgres(url)
    await migrate(url)
    await init_database(url)
    config.configure(config.DomainConfig(secret_key=TEST_SECRET_KEY, webhook_development=True))
    redis = RedisServer().start()
    receiver = WebhookReceiver().start()
    log = Path(tempfile.mkdtemp()) / "worker.log"
    env = worker_environment(database_url=url, redis_url=redis.url, mail_url="maildir:///tmp/x")
    workers = [WorkerProcess(env, log, threads=THREADS).start() for _ in range(WORKERS)]
    try:
        created = await make_account(SYSTEM_CLOCK)
        owner = owner_principal(created.account_id, created.owner_user_id)
        endpoint = await create_webhook_endpoint(actor=owner, url=receiver.url, clock=SYSTEM_CLOCK)
        assert endpoint.secret is not None
        ids = await _commit_events(created.account_id)
        configure_broker(redis.url)
        started = time.perf_counter()
        for at in range(0, len(ids), 100):
            await enqueue_outbox(ids[at : at + 100])
        await wait_until(lambda: len(receiver.accepted()) >= EVENTS, within=600, what="all")
        pipeline = EVENTS / (time.perf_counter() - started)
        raw = await _raw_loop(receiver.url, endpoint.secret, receiver)
    finally:
        for worker in workers:
            worker.stop()
        close_broker()
        receiver.stop()
        redis.stop()
        await close_database()
    backend = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(
        f"webhooks ({backend}, {WORKERS} workers x {THREADS} threads): "
        f"pipeline {pipeline:.0f} events/s, raw httpx loop {raw:.0f} events/s, "
        f"ratio {pipeline / raw:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
