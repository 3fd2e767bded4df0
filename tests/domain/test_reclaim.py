"""The reclaim policy's job with the domain clock moved: the notice once, its reset by
activity, the release at the boundary, the exemptions, the owner never, two runs at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from domain.clock import FixedClock
from domain.enums import (
    ActorKind,
    AssignmentEndReason,
    AuditAction,
    EmailKind,
    Role,
    UserStatus,
)
from domain.errors import DomainError, ErrorCode
from domain.models import (
    Account,
    AuditEvent,
    LicenseAssignment,
    OutboxMessage,
    Session,
    User,
    WebhookEndpoint,
    WebhookEvent,
)
from domain.policy_models import ReclaimNotice
from domain.principal import Principal
from domain.reads.reclaim import reclaim_preview
from domain.security import token_hash
from domain.services.accounts import CreatedAccount
from domain.services.auth import authenticate
from domain.services.reclaim import run_reclaim, set_reclaim_policy
from tests.domain.billing_worker import run_processes
from tests.support.factories import add_user
from tests.support.principals import user_principal

pytestmark = pytest.mark.anyio

DAY = timedelta(days=1)
# Every user below was last active on this day (the test clock starts on Mar 10).
LAST_SEEN = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
INACTIVE_DAYS = 30
NOTICE_DAYS = 7
NOTICE_AT = LAST_SEEN + (INACTIVE_DAYS - NOTICE_DAYS) * DAY
RELEASE_AT = LAST_SEEN + INACTIVE_DAYS * DAY


async def enable(
    owner: Principal,
    clock: FixedClock,
    *,
    notice_days: int = NOTICE_DAYS,
    exempt_admins: bool = True,
    exempt: list[int] | None = None,
) -> None:
    await set_reclaim_policy(
        actor=owner,
        enabled=True,
        inactive_days=INACTIVE_DAYS,
        notice_days=notice_days,
        exempt_admins=exempt_admins,
        exempt_user_ids=[str(i) for i in exempt or []],
        clock=clock,
    )


async def member(
    account: CreatedAccount,
    clock: FixedClock,
    name: str,
    *,
    role: Role = Role.MEMBER,
    status: UserStatus = UserStatus.ENABLED,
    last_active_at: datetime | None = LAST_SEEN,
) -> User:
    return await add_user(
        account.account_id,
        email=f"{name}@example.com",
        first_name=name.title(),
        role=role,
        status=status,
        created_at=clock.now(),
        last_active_at=last_active_at,
        licensed=True,
    )


async def notices_to(user_id: int) -> list[OutboxMessage]:
    return [
        row
        for row in await OutboxMessage.filter(kind=EmailKind.RECLAIM_NOTICE).order_by("id")
        if row.payload["userId"] == user_id
    ]


async def status_of(user_id: int) -> UserStatus:
    return UserStatus((await User.get(id=user_id)).status)


async def test_given_an_inactive_user_when_the_notice_time_comes_then_one_notice_is_sent_once(
    account, owner, clock
):
    user = await member(account, clock, "idle")
    await enable(owner, clock)

    clock.at = NOTICE_AT - timedelta(seconds=1)
    early = await run_reclaim(clock=clock)
    clock.at = NOTICE_AT
    first = await run_reclaim(clock=clock)
    clock.at = NOTICE_AT + DAY
    again = await run_reclaim(clock=clock)

    assert (early.notices_sent, first.notices_sent, again.notices_sent) == (0, 1, 0)
    (notice,) = await notices_to(user.id)
    assert notice.payload == {
        "userId": user.id,
        "inactiveSince": LAST_SEEN.isoformat(),
        "releaseAt": RELEASE_AT.isoformat(),
    }
    assert await status_of(user.id) == UserStatus.ENABLED


async def test_given_a_noticed_user_when_the_release_time_comes_then_the_licence_goes_at_that_boundary(  # noqa: E501
    account, owner, clock
):
    user = await member(account, clock, "idle")
    await Session.create(
        account_id=account.account_id,
        user_id=user.id,
        token_hash=token_hash("session-of-idle"),
        created_at=clock.now(),
        expires_at=clock.now() + 400 * DAY,
    )
    await WebhookEndpoint.create(
        account_id=account.account_id,
        url="https://hooks.example.com/in",
        event_types=["LICENSE_RELEASED"],
        secret_encrypted="never decrypted here",
        created_at=clock.now(),
    )
    await enable(owner, clock)
    clock.at = NOTICE_AT
    await run_reclaim(clock=clock)
    in_use_before = (await Account.get(id=account.account_id)).seats_in_use

    clock.at = RELEASE_AT - timedelta(seconds=1)
    before = await run_reclaim(clock=clock)
    clock.at = RELEASE_AT
    at = await run_reclaim(clock=clock)

    assert (before.licenses_released, at.licenses_released) == (0, 1)
    assert await status_of(user.id) == UserStatus.DISABLED
    assert (await Account.get(id=account.account_id)).seats_in_use == in_use_before - 1
    assignment = await LicenseAssignment.filter(user_id=user.id).get()
    assert assignment.end_reason == AssignmentEndReason.INACTIVITY
    assert assignment.unassigned_at == RELEASE_AT
    assert assignment.unassigned_by_kind == ActorKind.SYSTEM
    audit = await AuditEvent.filter(action=AuditAction.LICENSE_RECLAIMED).get()
    assert (audit.actor_kind, audit.target_user_id) == (ActorKind.SYSTEM, user.id)
    assert audit.data["reason"] == "INACTIVITY"
    assert await Session.filter(user_id=user.id, ended_at__isnull=True).count() == 0
    with pytest.raises(DomainError):
        await authenticate(bearer="session-of-idle", clock=clock)
    event = await WebhookEvent.filter(event_type="LICENSE_RELEASED").get()
    assert event.data == {
        "accountId": str(account.account_id),
        "userId": str(user.id),
        "reason": "INACTIVITY",
    }


async def test_given_a_noticed_user_when_it_signs_in_then_the_clock_restarts_and_a_new_window_gets_its_own_notice(  # noqa: E501
    account, owner, clock
):
    user = await member(account, clock, "back")
    bearer = "session-of-back"
    await Session.create(
        account_id=account.account_id,
        user_id=user.id,
        token_hash=token_hash(bearer),
        created_at=clock.now(),
        expires_at=clock.now() + 400 * DAY,
    )
    await enable(owner, clock)
    clock.at = NOTICE_AT
    await run_reclaim(clock=clock)

    clock.at = NOTICE_AT + DAY
    await authenticate(bearer=bearer, clock=clock)
    signed_in_at = clock.now()
    clock.at = RELEASE_AT
    at_old_release = await run_reclaim(clock=clock)
    clock.at = signed_in_at + (INACTIVE_DAYS - NOTICE_DAYS) * DAY
    second_window = await run_reclaim(clock=clock)

    assert at_old_release.licenses_released == 0
    assert await status_of(user.id) == UserStatus.ENABLED
    assert second_window.notices_sent == 1
    windows = [n.payload["inactiveSince"] for n in await notices_to(user.id)]
    assert windows == [LAST_SEEN.isoformat(), signed_in_at.isoformat()]


async def test_given_exemptions_when_everyone_is_long_inactive_then_only_covered_members_are_released(  # noqa: E501
    account, owner, clock
):
    plain = await member(account, clock, "plain")
    admin = await member(account, clock, "admin", role=Role.ADMIN)
    spared = await member(account, clock, "spared")
    invited = await member(account, clock, "invited", status=UserStatus.INVITED)
    await User.filter(id=account.owner_user_id).update(last_active_at=LAST_SEEN)
    await enable(owner, clock, notice_days=0, exempt=[spared.id])

    clock.at = RELEASE_AT + 100 * DAY
    report = await run_reclaim(clock=clock)

    assert report.licenses_released == 1
    assert await status_of(plain.id) == UserStatus.DISABLED
    for kept in (admin.id, spared.id, account.owner_user_id):
        assert await status_of(kept) == UserStatus.ENABLED
    assert await status_of(invited.id) == UserStatus.INVITED
    assert await OutboxMessage.filter(kind=EmailKind.RECLAIM_NOTICE).count() == 0


async def test_given_admins_not_exempt_when_inactive_then_an_admin_is_released_but_never_the_owner(
    account, owner, clock
):
    admin = await member(account, clock, "admin", role=Role.ADMIN)
    await User.filter(id=account.owner_user_id).update(last_active_at=None)
    await enable(owner, clock, notice_days=0, exempt_admins=False)

    clock.at = datetime(2027, 6, 1, tzinfo=UTC)
    await run_reclaim(clock=clock)

    assert await status_of(admin.id) == UserStatus.DISABLED
    assert await status_of(account.owner_user_id) == UserStatus.ENABLED


async def test_given_a_policy_enabled_late_when_users_are_long_inactive_then_they_are_noticed_first_and_released_notice_days_later(  # noqa: E501
    account, owner, clock
):
    user = await member(account, clock, "old")
    clock.at = RELEASE_AT + 50 * DAY
    await enable(owner, clock)
    enabled_at = clock.now()

    first = await run_reclaim(clock=clock)
    clock.at = enabled_at + NOTICE_DAYS * DAY - timedelta(seconds=1)
    almost = await run_reclaim(clock=clock)
    clock.at = enabled_at + NOTICE_DAYS * DAY
    due = await run_reclaim(clock=clock)

    assert (first.notices_sent, first.licenses_released) == (1, 0)
    assert almost.licenses_released == 0
    assert due.licenses_released == 1
    assert await status_of(user.id) == UserStatus.DISABLED


async def test_given_a_disabled_policy_when_the_job_runs_then_nobody_is_noticed_or_released(
    account, owner, clock
):
    user = await member(account, clock, "idle")
    await enable(owner, clock, notice_days=0)
    await set_reclaim_policy(
        actor=owner,
        enabled=False,
        inactive_days=INACTIVE_DAYS,
        notice_days=0,
        exempt_admins=True,
        exempt_user_ids=[],
        clock=clock,
    )

    clock.at = RELEASE_AT + DAY
    report = await run_reclaim(clock=clock)

    assert (report.accounts, report.licenses_released) == (0, 0)
    assert await status_of(user.id) == UserStatus.ENABLED


async def test_given_two_runs_at_once_when_licences_are_due_then_each_is_released_and_noticed_once(
    account, owner, clock
):
    users = [await member(account, clock, f"idle{n}") for n in range(4)]
    await enable(owner, clock)
    clock.at = NOTICE_AT

    noticed = await asyncio.gather(run_reclaim(clock=clock), run_reclaim(clock=clock))
    clock.at = RELEASE_AT
    released = await asyncio.gather(run_reclaim(clock=clock), run_reclaim(clock=clock))

    assert sum(r.notices_sent for r in noticed) == 4
    assert await OutboxMessage.filter(kind=EmailKind.RECLAIM_NOTICE).count() == 4
    assert sum(r.licenses_released for r in released) == 4
    assert await AuditEvent.filter(action=AuditAction.LICENSE_RECLAIMED).count() == 4
    assert [await status_of(u.id) for u in users] == [UserStatus.DISABLED] * 4
    account_row = await Account.get(id=account.account_id)
    assert account_row.seats_in_use == 1  # the owner's


async def test_given_two_worker_processes_when_licences_are_due_then_each_is_released_once(
    db, account, owner, clock
):
    users = [await member(account, clock, f"idle{n}") for n in range(4)]
    await enable(owner, clock, notice_days=0)

    reports = await run_processes([["reclaim", db, RELEASE_AT.isoformat()] for _ in range(2)])

    assert sum(r["licenses_released"] for r in reports) == 4
    assert await AuditEvent.filter(action=AuditAction.LICENSE_RECLAIMED).count() == 4
    assert [await status_of(u.id) for u in users] == [UserStatus.DISABLED] * 4
    assert (await Account.get(id=account.account_id)).seats_in_use == 1


async def test_given_the_preview_when_the_clock_reaches_its_first_release_then_the_job_releases_exactly_those(  # noqa: E501
    account, owner, clock
):
    early = await member(account, clock, "early", last_active_at=LAST_SEEN)
    later = await member(account, clock, "later", last_active_at=LAST_SEEN + 5 * DAY)
    never = await member(account, clock, "never", last_active_at=None)
    await enable(owner, clock, notice_days=0)

    page = await reclaim_preview(actor=owner, first=10, after=None, clock=clock)
    order = [edge.node.user.id for edge in page.edges]
    first_release = page.edges[0].node.plan.release_at
    clock.at = first_release
    report = await run_reclaim(clock=clock)

    # `never` has never signed in: its window opened with its assignment (Mar 10).
    assert order == [never.id, early.id, later.id]
    assert page.total_count == 3
    assert report.licenses_released == 1
    assert await status_of(never.id) == UserStatus.DISABLED
    assert await status_of(early.id) == UserStatus.ENABLED


async def test_given_a_preview_page_when_following_its_cursor_then_the_rest_comes_in_order(
    account, owner, clock
):
    users = [
        await member(account, clock, f"u{n}", last_active_at=LAST_SEEN + n * DAY) for n in range(4)
    ]
    await enable(owner, clock)

    first = await reclaim_preview(actor=owner, first=2, after=None, clock=clock)
    rest = await reclaim_preview(actor=owner, first=2, after=first.end_cursor, clock=clock)

    assert [e.node.user.id for e in first.edges + rest.edges] == [u.id for u in users]
    assert first.has_next_page and not rest.has_next_page
    assert [e.node.plan.release_at for e in first.edges] == [RELEASE_AT, RELEASE_AT + DAY]


@pytest.mark.parametrize(
    ("inactive_days", "notice_days", "field"),
    [
        (13, 0, "inactiveDays"),
        (366, 0, "inactiveDays"),
        (30, -1, "noticeDays"),
        (30, 31, "noticeDays"),
        (14, 14, "noticeDays"),
    ],
)
async def test_given_terms_out_of_range_when_setting_the_policy_then_invalid_input_on_the_field(
    account, owner, clock, inactive_days, notice_days, field
):
    with pytest.raises(DomainError) as refused:
        await set_reclaim_policy(
            actor=owner,
            enabled=True,
            inactive_days=inactive_days,
            notice_days=notice_days,
            exempt_admins=True,
            exempt_user_ids=[],
            clock=clock,
        )

    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID_INPUT, field)


async def test_given_a_member_or_a_foreign_user_when_setting_the_policy_then_refused_and_nothing_stored(  # noqa: E501
    account, owner, clock
):
    user = await member(account, clock, "m")
    with pytest.raises(DomainError) as forbidden:
        await set_reclaim_policy(
            actor=user_principal(account.account_id, user.id),
            enabled=True,
            inactive_days=30,
            notice_days=7,
            exempt_admins=True,
            exempt_user_ids=[],
            clock=clock,
        )
    with pytest.raises(DomainError) as foreign:
        await set_reclaim_policy(
            actor=owner,
            enabled=True,
            inactive_days=30,
            notice_days=7,
            exempt_admins=True,
            exempt_user_ids=["999999"],
            clock=clock,
        )

    assert forbidden.value.code == ErrorCode.FORBIDDEN
    assert (foreign.value.code, foreign.value.field) == (ErrorCode.NOT_FOUND, "exemptUserIds")
    assert await AuditEvent.filter(action=AuditAction.RECLAIM_POLICY_CHANGED).count() == 0


async def test_given_a_policy_change_when_set_then_audited_with_before_and_after(
    account, owner, clock
):
    user = await member(account, clock, "m")
    await enable(owner, clock, exempt=[user.id])

    audit = await AuditEvent.filter(action=AuditAction.RECLAIM_POLICY_CHANGED).get()

    assert audit.data["before"]["enabled"] is False
    assert audit.data["after"] == {
        "enabled": True,
        "inactiveDays": INACTIVE_DAYS,
        "noticeDays": NOTICE_DAYS,
        "exemptAdmins": True,
        "exemptUserIds": [str(user.id)],
    }
    assert await ReclaimNotice.all().count() == 0
