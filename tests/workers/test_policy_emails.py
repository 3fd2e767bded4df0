"""The licence-policy emails as the outbox composes them at send time: sent while
still true, dropped once moot (the user came back, the period renewed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain import config
from domain.enums import EmailKind, UserStatus
from domain.models import OutboxMessage, User
from domain.services.billing import run_period_end
from domain.services.reclaim import run_reclaim, set_reclaim_policy
from domain.services.renewal_notice import send_renewal_notices
from domain.settings import Settings
from tests.support.factories import add_user
from workers.outbox.compose import Prepared, Skip, prepare_email

pytestmark = pytest.mark.anyio

SETTINGS = Settings(public_url="https://licenses.example")
LAST_SEEN = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
NOTICE_AT = LAST_SEEN + timedelta(days=23)
PERIOD_END = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)


async def noticed_user(account, owner, clock) -> tuple[User, OutboxMessage]:
    user = await add_user(
        account.account_id,
        email="idle@example.com",
        first_name="Ida",
        last_name="Idle",
        status=UserStatus.ENABLED,
        created_at=clock.now(),
        last_active_at=LAST_SEEN,
        licensed=True,
    )
    await set_reclaim_policy(
        actor=owner,
        enabled=True,
        inactive_days=30,
        notice_days=7,
        exempt_admins=True,
        exempt_user_ids=[],
        clock=clock,
    )
    clock.at = NOTICE_AT
    await run_reclaim(clock=clock)
    return user, await OutboxMessage.get(kind=EmailKind.RECLAIM_NOTICE)


async def test_given_a_reclaim_notice_when_composed_then_it_goes_to_the_user_with_the_release_date(
    account, owner, clock
):
    user, row = await noticed_user(account, owner, clock)

    prepared = await prepare_email(row, settings=SETTINGS, now=clock.now())

    assert isinstance(prepared, Prepared)
    assert prepared.email.to_address == user.email
    assert "2026-04-10 09:00 UTC" in prepared.email.subject
    assert "https://licenses.example/" in prepared.email.text


async def test_given_a_reclaim_notice_when_the_user_signed_in_since_then_it_is_not_sent(
    account, owner, clock
):
    user, row = await noticed_user(account, owner, clock)
    await User.filter(id=user.id).update(last_active_at=NOTICE_AT + timedelta(minutes=5))

    prepared = await prepare_email(row, settings=SETTINGS, now=clock.now())

    assert isinstance(prepared, Skip)
    assert "active" in prepared.reason


async def test_given_a_renewal_notice_when_composed_then_the_owner_reads_seats_and_amount(
    account, clock
):
    clock.at = PERIOD_END - timedelta(days=config.DEFAULT_RENEWAL_NOTICE_DAYS)
    await send_renewal_notices(clock=clock)
    row = await OutboxMessage.get(kind=EmailKind.RENEWAL_NOTICE)

    prepared = await prepare_email(row, settings=SETTINGS, now=clock.now())

    assert isinstance(prepared, Prepared)
    assert prepared.email.to_address == "owner@example.com"
    assert prepared.email.subject == "Acme renews on 2026-04-10 12:00 UTC: USD 50.00"


async def test_given_a_renewal_notice_when_the_period_renewed_before_sending_then_it_is_dropped(
    account, clock
):
    clock.at = PERIOD_END - timedelta(days=config.DEFAULT_RENEWAL_NOTICE_DAYS)
    await send_renewal_notices(clock=clock)
    row = await OutboxMessage.get(kind=EmailKind.RENEWAL_NOTICE)
    clock.at = PERIOD_END
    await run_period_end(clock=clock)

    prepared = await prepare_email(row, settings=SETTINGS, now=clock.now())

    assert isinstance(prepared, Skip)
