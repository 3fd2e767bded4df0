"""Shared fixtures: a migrated database per test on the backend CI selects.

TEST_DATABASE_URL unset: SQLite (a copy of a migrated template file per test).
TEST_DATABASE_URL=postgres://…: one migrated database, emptied before each test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tortoise import Tortoise, connections

from domain import config
from domain.clock import FixedClock
from domain.db import close_database, init_database, migrate
from domain.uow import set_outbox_dispatcher

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL") or None
TEST_SECRET_KEY = b"test-secret-key-0123456789abcdef"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def backend_name() -> str:
    return "postgres" if POSTGRES_URL else "sqlite"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    if POSTGRES_URL:
        asyncio.run(_reset_postgres(POSTGRES_URL))
        asyncio.run(migrate(POSTGRES_URL))
        return POSTGRES_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(migrate(f"sqlite://{path}"))
    return str(path)


async def _reset_postgres(url: str) -> None:
    await init_database(url)
    try:
        await connections.get("default").execute_script(
            "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
        )
    finally:
        await Tortoise.close_connections()


async def _truncate_postgres() -> None:
    client = connections.get("default")
    _, rows = await client.execute_query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename NOT LIKE 'tortoise%'"
    )
    tables = ", ".join(f'"{row["tablename"]}"' for row in rows)
    await client.execute_script(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    copy = tmp_path / "test.db"
    shutil.copyfile(migrated_template, copy)
    return f"sqlite://{copy}"


@pytest.fixture(autouse=True)
def domain_config() -> Iterator[config.DomainConfig]:
    previous = config.configured()
    configured = config.DomainConfig(secret_key=TEST_SECRET_KEY)
    config.configure(configured)
    yield configured
    config.configure(previous)
    set_outbox_dispatcher(None)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[str]:
    await init_database(database_url)
    if POSTGRES_URL:
        await _truncate_postgres()
    try:
        yield database_url
    finally:
        await close_database()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC))
