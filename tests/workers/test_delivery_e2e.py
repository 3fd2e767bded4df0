"""End to end in production mode: real Redis, a real Dramatiq worker process,
a real SMTP server, and the test database shared with the worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from domain.clock import FixedClock
from domain.models import Invitation, OutboxMessage, Session
from domain.services.invitations import accept_invitation
from domain.settings import Settings
from domain.uow import set_outbox_dispatcher
from tests.support.delivery import PUBLIC_URL, WorkerProcess, wait_until, worker_environment
from tests.support.factories import make_account
from tests.support.local_services import RedisServer
from tests.support.smtp import SmtpServer
from workers.broker import close_broker, configure_broker, enqueue_outbox
from workers.scheduler import run_scheduler

pytestmark = pytest.mark.anyio


@pytest.fixture
def worker(
    db: str, redis_server: RedisServer, smtp: SmtpServer, worker_log: Path
) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        worker_environment(database_url=db, redis_url=redis_server.url, mail_url=smtp.url),
        worker_log,
    ).start()
    yield process
    process.stop()


@pytest.fixture
async def dispatching(redis_server: RedisServer) -> AsyncIterator[None]:
    """This test process acts as an API process: rows go to Redis after commit."""
    configure_broker(redis_server.url)
    set_outbox_dispatcher(enqueue_outbox)
    yield
    set_outbox_dispatcher(None)
    close_broker()


async def test_given_a_worker_process_when_an_account_is_created_then_the_owner_email_arrives_and_its_link_sets_the_password(  # noqa: E501
    db, worker, dispatching, smtp, real_now_clock: FixedClock
):
    created = await make_account(real_now_clock)

    await wait_until(lambda: len(smtp.received) == 1, within=15, what="the owner's email")
    row = await OutboxMessage.get(account_id=created.account_id)
    await wait_until(
        lambda: OutboxMessage.filter(id=row.id, sent_at__isnull=False).exists(),
        within=5,
        what="sent_at",
    )
    grant = await accept_invitation(
        token=smtp.received[0].accept_token(PUBLIC_URL),
        password="correct horse battery",
        clock=real_now_clock,
    )

    (received,) = smtp.received
    assert received.rcpt_tos == ["owner@example.com"]
    assert received.message_id == f"<outbox-{row.id}@licenses.test>"
    assert await Session.filter(user_id=created.owner_user_id).count() == 1
    assert grant is not None
    invitation = await Invitation.get(user_id=created.owner_user_id)
    assert invitation.sent_at is not None and invitation.delivery_attempts == 1


async def test_given_a_row_written_without_a_dispatcher_when_the_scheduler_runs_then_the_worker_relays_and_sends_it(  # noqa: E501
    db, worker, smtp, redis_server, real_now_clock: FixedClock
):
    # As the CLI does: commit, no hand-off to Redis.
    await make_account(real_now_clock)
    stop = asyncio.Event()
    scheduler = asyncio.create_task(
        run_scheduler(Settings(redis_url=redis_server.url), stop_event=stop, interval_seconds=1)
    )
    try:
        await wait_until(lambda: len(smtp.received) == 1, within=15, what="the relayed email")
    finally:
        stop.set()
        await scheduler

    assert list(smtp.message_ids().values()) == [1]
