"""The renewal notice: RENEWAL_NOTICE_DAYS before the period end, once per period, with
the seats, the amount, a scheduled reduction and the users it would release."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from domain import config
from domain.enums import EmailKind, UserStatus
from domain.models import OutboxMessage
from domain.services.billing import run_period_end
from domain.services.renewal_notice import send_renewal_notices
from domain.services.seats import change_seat_count
from tests.support.factories import add_user

pytestmark = pytest.mark.anyio

# The test account (5 seats at 10.00) is created on Mar 10, 12:00: its first
# period ends on Apr 10, 12:00, the next on May 10.
PERIOD_END = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
NEXT_END = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
NOTICE_DAYS = timedelta(days=config.DEFAULT_RENEWAL_NOTICE_DAYS)


async def notices() -> list[OutboxMessage]:
    return list(await OutboxMessage.filter(kind=EmailKind.RENEWAL_NOTICE).order_by("id"))


async def test_given_a_period_ending_when_the_notice_days_begin_then_the_owner_is_told_once(
    account, clock
):
    clock.at = PERIOD_END - NOTICE_DAYS - timedelta(seconds=1)
    early = await send_renewal_notices(clock=clock)
    clock.at = PERIOD_END - NOTICE_DAYS
    due = await send_renewal_notices(clock=clock)
    clock.at = PERIOD_END - timedelta(hours=1)
    again = await send_renewal_notices(clock=clock)

    assert (early, due, again) == (0, 1, 0)
    (notice,) = await notices()
    assert notice.account_id == account.account_id
    assert notice.payload == {
        "accountId": account.account_id,
        "periodIndex": 0,
        "periodEnd": PERIOD_END.isoformat(),
        "seats": 5,
        "amountCents": 5000,
        "currency": "USD",
        "reducedFrom": None,
        "releasedUserIds": [],
    }


async def test_given_notices_sent_when_the_period_renews_then_the_next_period_gets_its_own(
    account, clock
):
    clock.at = PERIOD_END - NOTICE_DAYS
    await send_renewal_notices(clock=clock)
    clock.at = PERIOD_END
    await run_period_end(clock=clock)

    clock.at = NEXT_END - NOTICE_DAYS
    sent = await send_renewal_notices(clock=clock)

    assert sent == 1
    assert [n.payload["periodIndex"] for n in await notices()] == [0, 1]
    assert (await notices())[1].payload["periodEnd"] == NEXT_END.isoformat()


async def test_given_a_scheduled_reduction_when_noticed_then_the_users_it_would_release_are_named(
    account, owner, clock
):
    await change_seat_count(
        actor=owner,
        total=2,
        accept_agreement=True,
        agreement_version=config.AGREEMENT_VERSION,
        clock=clock,
    )

    users = [
        await add_user(
            account.account_id,
            email=f"u{n}@example.com",
            status=UserStatus.ENABLED,
            created_at=clock.now() + timedelta(minutes=n),
            last_active_at=clock.now() + timedelta(days=n),
            licensed=True,
        )
        for n in range(3)
    ]
    clock.at = PERIOD_END - NOTICE_DAYS
    await send_renewal_notices(clock=clock)

    (notice,) = await notices()
    assert (notice.payload["seats"], notice.payload["reducedFrom"]) == (2, 5)
    assert notice.payload["amountCents"] == 2000
    # Scheduled while only the owner's was in use; now 4 for 2 seats: the two
    # least recently active go.
    assert notice.payload["releasedUserIds"] == [users[0].id, users[1].id]


async def test_given_two_runs_at_once_when_a_notice_is_due_then_it_is_sent_once(account, clock):
    clock.at = PERIOD_END - NOTICE_DAYS

    sent = await asyncio.gather(*(send_renewal_notices(clock=clock) for _ in range(3)))

    assert sum(sent) == 1
    assert len(await notices()) == 1


async def test_given_renewal_notice_days_zero_when_the_job_runs_then_nothing_is_sent(
    account, clock
):
    config.configure_with(renewal_notice_days=0)
    clock.at = PERIOD_END - timedelta(hours=1)

    assert await send_renewal_notices(clock=clock) == 0
    assert await notices() == []
