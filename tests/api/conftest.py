"""HTTP-level fixtures: the real ASGI app on the test database, and its principals.

The app (tests/support/http_client.py) is called through httpx's ASGITransport,
which sends no lifespan events: the `db` fixture has already initialised
Tortoise, and no background job runs. Its clock is the test's FixedClock.

`principals` builds, through the domain services, one account ("Acme": the
owner, an ADMIN, a MEMBER and the account's API token, each with a bearer
token) and a second account ("Globex") with an ADMIN of its own
(tests/support/principals.py). Passwords are hashed with deliberately cheap
Argon2 parameters (the production parameters take ~170 ms per hash); the code
paths are the production ones.

Helpers (`post`, `gql`, `payload_of`, ...) live in tests/support/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette

from domain import config, security
from domain.clock import FixedClock
from tests.support.http_client import build_app, client_for
from tests.support.principals import Principals, two_accounts


@pytest.fixture
def app(db: str, clock: FixedClock, domain_config: config.DomainConfig) -> Starlette:
    return build_app(db, clock, domain_config)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http


_CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Argon2id with tiny parameters: hashing and verifying take ~1 ms."""
    monkeypatch.setattr(security, "_hasher", lambda: _CHEAP_HASHER)
    dummy = _CHEAP_HASHER.hash("not a password")
    monkeypatch.setattr(security, "_dummy_hash", lambda: dummy)
    yield


@pytest.fixture
async def principals(db: str, clock: FixedClock, cheap_password_hashing: None) -> Principals:
    """Acme (5 seats: owner, ADMIN, MEMBER in use) and Globex (3 seats: owner, ADMIN)."""
    return await two_accounts(clock)
