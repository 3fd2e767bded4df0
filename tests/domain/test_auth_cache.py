"""authenticate with the principal cache of an API process: served from memory, never
after whatever ended it (one process here; tests/api/test_token_revocation_processes.py
for several)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from domain import auth_cache
from domain.auth_cache import PrincipalCache
from domain.enums import Role
from domain.errors import ErrorCode
from domain.models import ApiToken, User
from domain.principal import Principal
from domain.security import token_hash
from domain.services.accounts import CreatedAccount
from domain.services.auth import authenticate, logout, revoke_api_token
from domain.services.licensing import unassign_license
from domain.services.ownership import transfer_ownership
from domain.services.profile import update_user
from tests.support.assertions import refused
from tests.support.factories import accept_pending_invitation, invite_and_accept

pytestmark = pytest.mark.anyio


@pytest.fixture
async def cache(db: str) -> AsyncIterator[PrincipalCache]:
    async with auth_cache.principal_cache(db) as cache:
        assert cache is not None
        for _ in range(200):  # PostgreSQL: until the feed's first ping came back
            if cache.generation() is not None:
                break
            await asyncio.sleep(0.05)
        assert cache.generation() is not None, "the change feed never vouched"
        yield cache


async def cached(cache: PrincipalCache, bearer: str, clock) -> Principal:
    """Authenticate until the principal is served from the cache (a request that
    stamps the activity commits, which a SQLite cache sees as a change)."""
    for _ in range(3):
        principal = await authenticate(bearer=bearer, clock=clock)
        if cache.get(token_hash(bearer), clock.now()) is not None:
            return principal
    raise AssertionError("the principal was never cached")


async def member_session(owner: Principal, clock, role: Role = Role.MEMBER) -> tuple[int, str]:
    return await invite_and_accept(
        owner, clock, email="mia@example.com", first_name="Mia", role=role
    )


async def test_given_a_cached_api_token_when_revoked_then_the_next_request_is_refused(
    cache, account: CreatedAccount, owner, clock
):
    principal = await cached(cache, account.api_token, clock)

    await revoke_api_token(actor=owner, token_id=str(principal.token_id), clock=clock)

    await refused(authenticate(bearer=account.api_token, clock=clock), ErrorCode.UNAUTHENTICATED)


async def test_given_a_cached_session_when_logged_out_then_the_next_request_is_refused(
    cache, owner, clock
):
    _, bearer = await member_session(owner, clock)
    principal = await cached(cache, bearer, clock)

    await logout(actor=principal, clock=clock)

    await refused(authenticate(bearer=bearer, clock=clock), ErrorCode.UNAUTHENTICATED)


async def test_given_a_cached_session_when_the_licence_is_released_then_it_is_refused(
    cache, owner, clock
):
    user_id, bearer = await member_session(owner, clock)
    await cached(cache, bearer, clock)

    await unassign_license(actor=owner, user_id=str(user_id), clock=clock)

    await refused(authenticate(bearer=bearer, clock=clock), ErrorCode.UNAUTHENTICATED)


async def test_given_a_cached_admin_session_when_made_member_then_it_acts_as_member(
    cache, owner, clock
):
    user_id, bearer = await member_session(owner, clock, role=Role.ADMIN)
    assert (await cached(cache, bearer, clock)).role == Role.ADMIN

    await update_user(actor=owner, user_id=str(user_id), role=Role.MEMBER, clock=clock)

    assert (await authenticate(bearer=bearer, clock=clock)).role == Role.MEMBER


async def test_given_the_owners_cached_session_when_ownership_moves_then_it_is_refused(
    cache, account: CreatedAccount, owner, clock
):
    owner_bearer = await accept_pending_invitation(account.owner_user_id, clock)
    owner_session = await cached(cache, owner_bearer, clock)
    user_id, _ = await member_session(owner, clock)

    await transfer_ownership(actor=owner_session, user_id=str(user_id), clock=clock)

    await refused(authenticate(bearer=owner_bearer, clock=clock), ErrorCode.UNAUTHENTICATED)


async def test_given_a_cached_session_when_it_expires_then_it_is_refused(cache, owner, clock):
    _, bearer = await member_session(owner, clock)
    await cached(cache, bearer, clock)

    clock.advance(timedelta(days=14))

    await refused(authenticate(bearer=bearer, clock=clock), ErrorCode.UNAUTHENTICATED)


async def test_given_a_cached_session_when_the_resolution_passes_then_activity_is_stamped(
    cache, owner, clock
):
    user_id, bearer = await member_session(owner, clock)
    await cached(cache, bearer, clock)
    clock.advance(timedelta(minutes=2))

    await authenticate(bearer=bearer, clock=clock)

    user = await User.get(id=user_id)
    assert user.last_active_at == clock.now()


async def test_given_a_cached_token_when_another_connection_revokes_it_then_it_is_refused(
    cache, db: str, account: CreatedAccount, clock
):
    await cached(cache, account.api_token, clock)
    token = await ApiToken.get(account_id=account.account_id)
    before = cache.generation()

    # Not through this process's services: a statement of another connection.
    if db.startswith("sqlite"):
        writer = sqlite3.connect(db.removeprefix("sqlite://"), isolation_level=None)
        writer.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ?", (str(clock.now()), token.id)
        )
        writer.close()
    else:
        writer = await asyncpg.connect(db.split("?", 1)[0])
        await writer.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = $1", token.id)
        await writer.close()
        for _ in range(200):  # the notice travels on the feed's own connection
            if cache.generation() != before:
                break
            await asyncio.sleep(0.01)

    await refused(authenticate(bearer=account.api_token, clock=clock), ErrorCode.UNAUTHENTICATED)
