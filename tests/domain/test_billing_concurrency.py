"""Two period-end runners at once: every period renewed once, every surplus released once."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from domain import config
from domain.clock import FixedClock
from domain.enums import AuditAction, ChargeKind, EmailKind, UserStatus
from domain.models import Account, AuditEvent, Charge, LicenseAssignment, OutboxMessage, User
from domain.services.billing import run_period_end
from domain.services.seats import change_seat_count
from tests.domain.billing_worker import run_processes
from tests.support.factories import add_user, make_account
from tests.support.principals import owner_principal

pytestmark = pytest.mark.anyio

ACCOUNTS = 4
# Each account: 10 seats, reduction to 3 scheduled, then 6 more licences
# taken: 7 in use, 4 released at the first boundary.
KEPT_TOTAL = 3
SURPLUS = 4
# Three period ends (Apr 10, May 10, Jun 10) have passed.
RUN_AT = datetime(2026, 6, 20, tzinfo=UTC)
PERIODS_BEHIND = 3


@dataclass(frozen=True)
class Setup:
    account_ids: list[int]
    owner_ids: list[int]


async def accounts_behind_with_surplus(clock: FixedClock) -> Setup:
    account_ids: list[int] = []
    owner_ids: list[int] = []
    for n in range(ACCOUNTS):
        created = await make_account(clock, seats=10, email=f"owner{n}@example.com")
        owner = owner_principal(created.account_id, created.owner_user_id)
        await change_seat_count(
            actor=owner,
            total=KEPT_TOTAL,
            accept_agreement=True,
            agreement_version=config.AGREEMENT_VERSION,
            clock=clock,
        )
        for k in range(6):
            await add_user(
                created.account_id,
                email=f"u{k}@example.com",
                status=UserStatus.INVITED if k % 2 else UserStatus.ENABLED,
                created_at=clock.now() + timedelta(minutes=k),
                last_active_at=clock.now() + timedelta(hours=k) if k % 3 == 0 else None,
                licensed=True,
            )
        account_ids.append(created.account_id)
        owner_ids.append(created.owner_user_id)
    return Setup(account_ids=account_ids, owner_ids=owner_ids)


async def assert_everything_happened_once(setup: Setup) -> None:
    for account_id, owner_id in zip(setup.account_ids, setup.owner_ids, strict=True):
        account = await Account.get(id=account_id)
        assert (account.period_index, account.seats_total, account.seats_in_use) == (
            PERIODS_BEHIND,
            KEPT_TOTAL,
            KEPT_TOTAL,
        )
        assert account.scheduled_total is None
        renewals = await Charge.filter(account_id=account_id, kind=ChargeKind.RENEWAL)
        starts = sorted(c.period_start for c in renewals)
        assert starts == [
            datetime(2026, 4, 10, 12, 0, tzinfo=UTC),
            datetime(2026, 5, 10, 12, 0, tzinfo=UTC),
            datetime(2026, 6, 10, 12, 0, tzinfo=UTC),
        ]
        assert {c.quantity for c in renewals} == {KEPT_TOTAL}
        released = await AuditEvent.filter(
            account_id=account_id, action=AuditAction.LICENSE_RELEASED
        ).values_list("target_user_id", flat=True)
        assert len(released) == SURPLUS
        assert set(Counter(released).values()) == {1}
        assert owner_id not in released
        disabled = await User.filter(account_id=account_id, status=UserStatus.DISABLED).values_list(
            "id", flat=True
        )
        assert sorted(disabled) == sorted(released)
        closed = await LicenseAssignment.filter(
            account_id=account_id, unassigned_at__isnull=False
        ).values_list("user_id", flat=True)
        assert sorted(closed) == sorted(released)
        for action, count in (
            (AuditAction.SEAT_REDUCTION_APPLIED, 1),
            (AuditAction.PERIOD_RENEWED, PERIODS_BEHIND),
        ):
            assert await AuditEvent.filter(account_id=account_id, action=action).count() == count
        emails = await OutboxMessage.filter(account_id=account_id, kind=EmailKind.LICENSES_RELEASED)
        assert len(emails) == 1
        assert sorted(emails[0].payload["userIds"]) == sorted(released)


async def test_given_two_runners_in_one_process_when_run_at_once_then_everything_happens_once(
    db, clock
):
    setup = await accounts_behind_with_surplus(clock)
    clock.at = RUN_AT

    reports = await asyncio.gather(run_period_end(clock=clock), run_period_end(clock=clock))

    assert sum(r.periods_renewed for r in reports) == ACCOUNTS * PERIODS_BEHIND
    assert sum(r.licenses_released for r in reports) == ACCOUNTS * SURPLUS
    assert all(r.failed_account_ids == () for r in reports)
    await assert_everything_happened_once(setup)


async def test_given_two_worker_processes_when_run_at_once_then_everything_happens_once(db, clock):
    setup = await accounts_behind_with_surplus(clock)

    reports = await run_processes([["period-end", db, RUN_AT.isoformat()] for _ in range(2)])

    assert sum(r["periods_renewed"] for r in reports) == ACCOUNTS * PERIODS_BEHIND
    assert sum(r["licenses_released"] for r in reports) == ACCOUNTS * SURPLUS
    assert all(r["failed_account_ids"] == [] for r in reports)
    await assert_everything_happened_once(setup)


async def test_given_a_finished_run_when_run_again_concurrently_then_nothing_more_happens(
    db, clock
):
    setup = await accounts_behind_with_surplus(clock)
    clock.at = RUN_AT
    await run_period_end(clock=clock)

    reports = await asyncio.gather(*(run_period_end(clock=clock) for _ in range(3)))

    assert [(r.periods_renewed, r.licenses_released) for r in reports] == [(0, 0)] * 3
    await assert_everything_happened_once(setup)
