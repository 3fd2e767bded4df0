"""Shared fixtures: a migrated database per test on the backend CI selects.

TEST_DATABASE_URL unset: SQLite (a copy of a migrated template file per test).
TEST_DATABASE_URL=postgres://…: one migrated database, emptied before each test.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain import config
from domain.clock import FixedClock
from domain.db import close_database, init_database, migrate
from domain.models import ApiToken
from domain.principal import Principal
from domain.services.accounts import CreatedAccount
from domain.uow import set_outbox_dispatcher
from tests.support.database import (
    POSTGRES_URL,
    TEST_SECRET_KEY,
    reset_postgres,
    truncate_postgres,
)
from tests.support.factories import make_account
from tests.support.principals import api_token_principal, owner_principal


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    if POSTGRES_URL:
        asyncio.run(reset_postgres(POSTGRES_URL))
        asyncio.run(migrate(POSTGRES_URL))
        return POSTGRES_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(migrate(f"sqlite://{path}"))
    return str(path)


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
        await truncate_postgres()
    try:
        yield database_url
    finally:
        await close_database()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC))


@pytest.fixture
async def account(db: str, clock: FixedClock) -> CreatedAccount:
    """Acme: 5 seats, its owner (no password yet) and its API token."""
    return await make_account(clock)


@pytest.fixture
def owner(account: CreatedAccount) -> Principal:
    return owner_principal(account.account_id, account.owner_user_id)


@pytest.fixture
async def api_token_actor(account: CreatedAccount) -> Principal:
    token = await ApiToken.get(account_id=account.account_id)
    return api_token_principal(account.account_id, token.id)
