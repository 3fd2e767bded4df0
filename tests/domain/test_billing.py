"""The period-end job: reductions applied, surplus released in order, renewals charged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain import config
from domain.clock import FixedClock
from domain.enums import (
    ActorKind,
    AssignmentEndReason,
    AuditAction,
    ChargeKind,
    EmailKind,
    InvitationStatus,
    Role,
    UserStatus,
)
from domain.models import (
    Account,
    AuditEvent,
    Charge,
    Invitation,
    LicenseAssignment,
    OutboxMessage,
    Session,
    User,
)
from domain.principal import Principal
from domain.services.accounts import create_account
from domain.services.billing import run_period_end
from domain.services.seats import change_seat_count
from tests.support.factories import add_user, make_account
from tests.support.principals import owner_principal
from tests.support.snapshot import database_snapshot

pytestmark = pytest.mark.anyio

PERIOD_END = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
AGREED = {"accept_agreement": True, "agreement_version": config.AGREEMENT_VERSION}


def day(n: int) -> datetime:
    """Day n of February 2026: readable, ordered timestamps before the period end."""
    return datetime(2026, 2, 1, tzinfo=UTC) + timedelta(days=n - 1)


async def schedule(owner: Principal, clock: FixedClock, total: int) -> None:
    await change_seat_count(actor=owner, total=total, **AGREED, clock=clock)


async def renewals(account_id: int) -> list[tuple[datetime, datetime, int, int]]:
    charges = await Charge.filter(account_id=account_id, kind=ChargeKind.RENEWAL).order_by(
        "period_start"
    )
    return [(c.period_start, c.period_end, c.quantity, c.amount_cents) for c in charges]


async def test_given_no_period_ended_when_run_then_nothing_is_written(account, clock):
    clock.at = PERIOD_END - timedelta(seconds=1)
    before = await database_snapshot()

    report = await run_period_end(clock=clock)

    assert (report.accounts_due, report.periods_renewed, report.licenses_released) == (0, 0, 0)
    assert await database_snapshot() == before


async def test_given_period_ended_when_run_then_period_rolls_and_renewal_is_charged(account, clock):
    clock.at = PERIOD_END

    report = await run_period_end(clock=clock)

    assert (report.accounts_due, report.periods_renewed, report.licenses_released) == (1, 1, 0)
    assert report.failed_account_ids == ()
    row = await Account.get(id=account.account_id)
    assert row.period_index == 1
    assert (row.current_period_start, row.current_period_end) == (
        PERIOD_END,
        datetime(2026, 5, 10, 12, 0, tzinfo=UTC),
    )
    charge = await Charge.get(account_id=account.account_id)
    assert charge.kind == ChargeKind.RENEWAL
    assert (charge.quantity, charge.unit_amount_cents, charge.amount_cents) == (5, 1000, 5000)
    assert charge.currency == "USD"
    assert (charge.period_start, charge.period_end) == (
        row.current_period_start,
        row.current_period_end,
    )
    audit = await AuditEvent.get(action=AuditAction.PERIOD_RENEWED)
    assert audit.actor_kind == ActorKind.SYSTEM
    assert audit.data["chargeId"] == charge.id
    assert audit.data["periodIndex"] == 1


async def test_given_run_twice_when_period_ended_then_renewal_is_charged_once(account, clock):
    clock.at = PERIOD_END + timedelta(hours=1)
    await run_period_end(clock=clock)
    before = await database_snapshot()

    report = await run_period_end(clock=clock)

    assert report.periods_renewed == 0
    assert await database_snapshot() == before


async def test_given_scheduled_reduction_when_period_ends_then_applied_and_renewal_on_reduced_total(
    account, owner, clock
):
    await schedule(owner, clock, 3)
    clock.at = PERIOD_END

    report = await run_period_end(clock=clock)

    assert (report.periods_renewed, report.licenses_released) == (1, 0)
    row = await Account.get(id=account.account_id)
    assert (row.seats_total, row.scheduled_total, row.seats_in_use) == (3, None, 1)
    assert await renewals(account.account_id) == [
        (PERIOD_END, datetime(2026, 5, 10, 12, 0, tzinfo=UTC), 3, 3000)
    ]
    applied = await AuditEvent.get(action=AuditAction.SEAT_REDUCTION_APPLIED)
    assert applied.data == {"before": 5, "after": 3, "releasedUserIds": []}
    assert await OutboxMessage.filter(kind=EmailKind.LICENSES_RELEASED).count() == 0
    actions = [e.action for e in await AuditEvent.all().order_by("id")][-2:]
    assert actions == [AuditAction.SEAT_REDUCTION_APPLIED, AuditAction.PERIOD_RENEWED]


async def test_given_surplus_when_reduction_applies_then_released_in_spec_order_never_the_owner(
    db, clock
):
    created = await make_account(clock, seats=10)
    account_id = created.account_id
    owner = owner_principal(account_id, created.owner_user_id)
    await schedule(owner, clock, 3)
    # Licences assigned after the reduction was scheduled (they stay available).
    active_recent = await add_user(
        account_id,
        email="recent@example.com",
        created_at=day(1),
        last_active_at=day(20),
        licensed=True,
    )
    active_old = await add_user(
        account_id, email="old@example.com", created_at=day(2), last_active_at=day(5), licensed=True
    )
    never_second = await add_user(
        account_id, email="never2@example.com", created_at=day(4), licensed=True
    )
    never_first = await add_user(
        account_id, email="never1@example.com", created_at=day(3), licensed=True
    )
    invited_old = await add_user(
        account_id,
        email="inv-old@example.com",
        status=UserStatus.INVITED,
        created_at=day(1),
        invited_at=day(6),
        licensed=True,
    )
    invited_new = await add_user(
        account_id,
        email="inv-new@example.com",
        status=UserStatus.INVITED,
        created_at=day(2),
        invited_at=day(8),
        licensed=True,
    )
    await Session.create(
        account_id=account_id,
        user_id=never_first.id,
        token_hash="x" * 64,
        created_at=day(3),
        expires_at=PERIOD_END + timedelta(days=30),
    )
    # The owner, never active, would come first among the ENABLED users.
    assert (await User.get(id=created.owner_user_id)).last_active_at is None
    clock.at = PERIOD_END

    report = await run_period_end(clock=clock)

    # 7 in use, 3 kept: the two invited (newest first), then the never active.
    expected = [invited_new.id, invited_old.id, never_first.id, never_second.id]
    assert report.licenses_released == 4
    released_audits = await AuditEvent.filter(action=AuditAction.LICENSE_RELEASED).order_by("id")
    assert [a.target_user_id for a in released_audits] == expected
    assert {a.actor_kind for a in released_audits} == {ActorKind.SYSTEM}
    assert [a.data["previousStatus"] for a in released_audits] == [
        "INVITED",
        "INVITED",
        "ENABLED",
        "ENABLED",
    ]
    statuses = dict(await User.filter(account_id=account_id).values_list("id", "status"))
    assert statuses == {
        created.owner_user_id: UserStatus.ENABLED,
        active_recent.id: UserStatus.ENABLED,
        active_old.id: UserStatus.ENABLED,
        **dict.fromkeys(expected, UserStatus.DISABLED),
    }
    ended = await LicenseAssignment.filter(
        account_id=account_id, unassigned_at__isnull=False
    ).values_list("user_id", "end_reason", "unassigned_by_kind")
    assert sorted(ended) == sorted(
        (uid, AssignmentEndReason.SEAT_REDUCTION, ActorKind.SYSTEM) for uid in expected
    )
    invitations = await Invitation.filter(user_id__in=[invited_new.id, invited_old.id])
    assert {i.status for i in invitations} == {InvitationStatus.REVOKED}
    assert (await Session.get(user_id=never_first.id)).ended_at == PERIOD_END
    row = await Account.get(id=account_id)
    assert (row.seats_total, row.seats_in_use, row.scheduled_total) == (3, 3, None)
    assert [r[2] for r in await renewals(account_id)] == [3]
    email = await OutboxMessage.get(kind=EmailKind.LICENSES_RELEASED)
    assert email.payload == {
        "accountId": account_id,
        "recipientUserId": created.owner_user_id,
        "userIds": expected,
        "newTotal": 3,
    }


async def test_given_reduction_to_one_when_period_ends_then_everyone_but_the_owner_is_released(
    account, owner, clock
):
    await schedule(owner, clock, 1)
    users = [
        await add_user(
            account.account_id, email=f"u{n}@example.com", created_at=day(n), licensed=True
        )
        for n in range(1, 5)
    ]
    clock.at = PERIOD_END

    report = await run_period_end(clock=clock)

    assert report.licenses_released == 4
    owner_row = await User.get(id=account.owner_user_id)
    assert (owner_row.role, owner_row.status) == (Role.OWNER, UserStatus.ENABLED)
    assert {u.status for u in await User.filter(id__in=[u.id for u in users])} == {
        UserStatus.DISABLED
    }
    row = await Account.get(id=account.account_id)
    assert (row.seats_total, row.seats_in_use) == (1, 1)


async def test_given_invitation_past_expiry_at_reduction_then_it_expires_instead_of_a_release(
    account, owner, clock
):
    await schedule(owner, clock, 2)
    enabled = await add_user(
        account.account_id, email="e@example.com", created_at=day(1), licensed=True
    )
    stale = await add_user(
        account.account_id,
        email="stale@example.com",
        status=UserStatus.INVITED,
        created_at=day(2),
        invitation_expires_at=PERIOD_END - timedelta(days=1),
        licensed=True,
    )
    clock.at = PERIOD_END

    report = await run_period_end(clock=clock)

    # In use 3 > 2, but the expired invitation frees one: nobody is released.
    assert report.licenses_released == 0
    assert (await User.get(id=enabled.id)).status == UserStatus.ENABLED
    assert (await User.get(id=stale.id)).status == UserStatus.DISABLED
    assert (await Invitation.get(user_id=stale.id)).status == InvitationStatus.EXPIRED
    assert await AuditEvent.filter(action=AuditAction.LICENSE_RELEASED).count() == 0
    assert await AuditEvent.filter(action=AuditAction.INVITATION_EXPIRED).count() == 1


async def test_given_three_periods_behind_when_run_then_three_renewals_reduction_at_first_only(
    account, owner, clock
):
    await schedule(owner, clock, 2)
    await add_user(account.account_id, email="a@example.com", created_at=day(1), licensed=True)
    await add_user(account.account_id, email="b@example.com", created_at=day(2), licensed=True)
    clock.at = datetime(2026, 6, 15, tzinfo=UTC)

    report = await run_period_end(clock=clock)

    assert (report.periods_renewed, report.licenses_released) == (3, 1)
    assert await renewals(account.account_id) == [
        (PERIOD_END, datetime(2026, 5, 10, 12, 0, tzinfo=UTC), 2, 2000),
        (
            datetime(2026, 5, 10, 12, 0, tzinfo=UTC),
            datetime(2026, 6, 10, 12, 0, tzinfo=UTC),
            2,
            2000,
        ),
        (
            datetime(2026, 6, 10, 12, 0, tzinfo=UTC),
            datetime(2026, 7, 10, 12, 0, tzinfo=UTC),
            2,
            2000,
        ),
    ]
    assert await AuditEvent.filter(action=AuditAction.SEAT_REDUCTION_APPLIED).count() == 1
    assert await AuditEvent.filter(action=AuditAction.PERIOD_RENEWED).count() == 3
    applied, first_renewal = (
        await AuditEvent.filter(
            action__in=[AuditAction.SEAT_REDUCTION_APPLIED, AuditAction.PERIOD_RENEWED]
        )
        .order_by("id")
        .limit(2)
    )
    assert applied.action == AuditAction.SEAT_REDUCTION_APPLIED
    assert first_renewal.data["periodIndex"] == 1
    row = await Account.get(id=account.account_id)
    assert (row.period_index, row.current_period_end) == (
        3,
        datetime(2026, 7, 10, 12, 0, tzinfo=UTC),
    )


async def test_given_jan_31_anchor_when_months_pass_then_renewals_end_on_feb_28_then_mar_31(db):
    clock = FixedClock(datetime(2026, 1, 20, 9, 0, tzinfo=UTC))
    created = await create_account(
        name="Month-end",
        owner_email="owner@example.com",
        owner_first_name="Olive",
        owner_last_name="Owner",
        seats=2,
        seat_price_cents=500,
        current_period_end=datetime(2026, 1, 31, 9, 0, tzinfo=UTC),
        clock=clock,
    )

    for run_at in ("2026-02-01", "2026-03-01", "2026-04-01"):
        clock.at = datetime.fromisoformat(f"{run_at}T00:00:00+00:00")
        report = await run_period_end(clock=clock)
        assert report.periods_renewed == 1

    at_nine = [
        datetime(2026, m, d, 9, 0, tzinfo=UTC) for m, d in ((1, 31), (2, 28), (3, 31), (4, 30))
    ]
    assert await renewals(created.account_id) == [
        (at_nine[0], at_nine[1], 2, 1000),
        (at_nine[1], at_nine[2], 2, 1000),
        (at_nine[2], at_nine[3], 2, 1000),
    ]


async def test_given_several_accounts_when_run_for_one_or_in_batches_then_each_renewed_once(
    db, clock
):
    accounts = [await make_account(clock, email=f"owner{n}@example.com") for n in range(3)]
    clock.at = PERIOD_END

    only_first = await run_period_end(clock=clock, account_id=accounts[0].account_id)
    rest = await run_period_end(clock=clock, batch_size=1)

    assert (only_first.accounts_due, only_first.periods_renewed) == (1, 1)
    assert (rest.accounts_due, rest.periods_renewed) == (2, 2)
    for created in accounts:
        assert len(await renewals(created.account_id)) == 1


async def test_given_seats_added_after_period_end_before_the_job_then_renewal_includes_them(
    account, owner, clock
):
    clock.at = PERIOD_END + timedelta(minutes=5)

    outcome = await change_seat_count(actor=owner, total=7, **AGREED, clock=clock)
    await run_period_end(clock=clock)

    # Nothing is left of the ended period to prorate; the renewal bills them.
    assert outcome.charge is not None and outcome.charge.amount_cents == 0
    assert [r[2:] for r in await renewals(account.account_id)] == [(7, 7000)]
