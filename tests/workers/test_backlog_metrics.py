"""The email backlog in /metrics, read from the outbox table: the real app
on the test database, and a database that is down or hangs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from domain.clock import SYSTEM_CLOCK
from domain.db import close_database, init_database
from domain.enums import EmailKind
from domain.models import OutboxMessage
from tests.support.http_client import build_app, client_for
from tests.support.local_services import find_free_port

pytestmark = pytest.mark.anyio

BACKLOG = (
    "licenses_outbox_pending",
    "licenses_outbox_oldest_pending_age_seconds",
    "licenses_outbox_failed",
    "licenses_outbox_backlog_read_timestamp_seconds",
)


async def add_row(
    created_at: datetime, *, sent_at: datetime | None = None, failed_at: datetime | None = None
) -> None:
    await OutboxMessage.create(
        kind=EmailKind.LICENSE_REMOVED,
        payload={"userId": 1},
        created_at=created_at,
        available_at=created_at,
        sent_at=sent_at,
        failed_at=failed_at,
    )


async def add_backlog() -> None:
    """Two pending rows (the older committed 10 minutes ago), one failed
    (older still: not pending), one sent (older still: history)."""
    now = SYSTEM_CLOCK.now()
    await add_row(now - timedelta(minutes=10))
    await add_row(now - timedelta(minutes=1))
    await add_row(now - timedelta(hours=2), failed_at=now - timedelta(hours=1))
    await add_row(now - timedelta(days=1), sent_at=now - timedelta(days=1))


async def scrape(app) -> tuple[int, dict[str, float]]:
    async with client_for(app) as http:
        response = await http.get("/metrics")
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name in BACKLOG
    }
    return response.status_code, values


async def database_down() -> None:
    """Reconnect the process to a port nobody listens on."""
    await close_database()
    await init_database(f"postgres://postgres@127.0.0.1:{find_free_port()}/licenses")


@pytest.fixture
async def hung_database() -> AsyncIterator[str]:
    """A server that accepts connections and never answers."""
    connections: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"postgres://postgres@127.0.0.1:{port}/licenses"
    for writer in connections:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_given_pending_failed_and_sent_emails_when_metrics_are_scraped_then_the_backlog_gauges_come_from_the_outbox(  # noqa: E501
    db, clock, domain_config
):
    await add_backlog()
    app = build_app(db, clock, domain_config)

    status, values = await scrape(app)

    assert status == 200
    assert values["licenses_outbox_pending"] == 2
    assert values["licenses_outbox_failed"] == 1
    # Committed 10 minutes ago; the bound only says it is that row, not a newer one.
    assert 600 <= values["licenses_outbox_oldest_pending_age_seconds"] < 3600
    assert values["licenses_outbox_backlog_read_timestamp_seconds"] > 0


async def test_given_an_empty_outbox_when_metrics_are_scraped_then_nothing_is_pending_and_no_age_is_reported(  # noqa: E501
    db, clock, domain_config
):
    await add_row(SYSTEM_CLOCK.now() - timedelta(days=1), sent_at=SYSTEM_CLOCK.now())
    app = build_app(db, clock, domain_config)

    status, values = await scrape(app)

    assert status == 200
    assert values["licenses_outbox_pending"] == 0
    assert values["licenses_outbox_oldest_pending_age_seconds"] == 0
    assert values["licenses_outbox_failed"] == 0


async def test_given_the_database_down_when_metrics_are_scraped_then_they_answer_with_the_last_backlog_values(  # noqa: E501
    db, clock, domain_config
):
    await add_backlog()
    app = build_app(db, clock, domain_config)
    _, before = await scrape(app)
    await database_down()

    status, values = await scrape(app)

    assert status == 200
    assert before["licenses_outbox_pending"] == 2
    assert values == before


async def test_given_a_database_that_never_answers_when_metrics_are_scraped_then_they_answer_with_the_last_backlog_values(  # noqa: E501
    db, clock, domain_config, hung_database
):
    await add_backlog()
    app = build_app(db, clock, domain_config)
    _, before = await scrape(app)
    await close_database()
    await init_database(hung_database)

    status, values = await asyncio.wait_for(scrape(app), timeout=30)

    assert status == 200
    assert before["licenses_outbox_pending"] == 2
    assert values == before
