"""An account to act on, and the principals that act on it."""

from __future__ import annotations

import pytest

from domain.clock import FixedClock
from domain.enums import ActorKind, Role
from domain.models import ApiToken
from domain.principal import Principal
from domain.services.accounts import CreatedAccount, create_account


async def make_account(
    clock: FixedClock, *, seats: int = 5, email: str = "owner@example.com", name: str = "Acme"
) -> CreatedAccount:
    return await create_account(
        name=name,
        owner_email=email,
        owner_first_name="Olive",
        owner_last_name="Owner",
        seats=seats,
        seat_price_cents=1000,
        clock=clock,
    )


@pytest.fixture
async def account(db: str, clock: FixedClock) -> CreatedAccount:
    return await make_account(clock)


@pytest.fixture
def owner(account: CreatedAccount) -> Principal:
    return Principal(
        account_id=account.account_id,
        kind=ActorKind.USER,
        role=Role.OWNER,
        user_id=account.owner_user_id,
    )


@pytest.fixture
async def api_token_actor(account: CreatedAccount) -> Principal:
    token = await ApiToken.get(account_id=account.account_id)
    return Principal(
        account_id=account.account_id, kind=ActorKind.API_TOKEN, role=Role.ADMIN, token_id=token.id
    )
