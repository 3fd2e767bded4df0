"""Acceptance: the embedded default (no Redis) runs invitation expiry and the billing period
end on its own, from the runner's periodic pass (EmbeddedRunner.start(), not direct job calls).

One runner, one test clock that the test moves: (a) past an invitation's expiry, (b) past the
period end of an account with a scheduled reduction and more licences in use than the reduced
total. The emails land in the runner's Maildir (MAIL_URL=maildir://...).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest

from domain import config
from domain.clock import FixedClock
from domain.enums import (
    ActorKind,
    AssignmentEndReason,
    AuditAction,
    ChargeKind,
    InvitationStatus,
    UserStatus,
)
from domain.models import Account, AuditEvent, Charge, Invitation, LicenseAssignment, User
from domain.principal import Principal
from domain.services.billing import PeriodEndReport
from domain.services.invitations import invite_user
from domain.services.seats import change_seat_count
from domain.settings import Settings
from tests.support.delivery import PUBLIC_URL, wait_until
from tests.support.factories import add_user, make_account
from tests.support.principals import owner_principal
from workers.embedded import EmbeddedRunner
from workers.jobs import EXPIRE_INVITATIONS, PERIOD_END

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # the `clock` fixture's instant
PERIOD_END_AT = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)  # one month after the account's creation
SCHEDULER_SECONDS = 0.1
WITHIN = 10.0  # seconds; a pass takes milliseconds


def march(day: int) -> datetime:
    return datetime(2026, 3, day, 12, tzinfo=UTC)


def april(day: int) -> datetime:
    return datetime(2026, 4, day, 12, tzinfo=UTC)


class RecordingRunner(EmbeddedRunner):
    """The real runner; each periodic pass's results are kept for the assertions."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.passes: list[dict[str, object]] = []

    async def run_jobs(self) -> dict[str, object]:
        results = await super().run_jobs()
        self.passes.append(results)
        return results

    async def more_passes(self, count: int) -> None:
        """Wait until `count` passes have completed from now on."""
        target = len(self.passes) + count
        await wait_until(
            lambda: len(self.passes) >= target, within=WITHIN, what=f"{count} more passes"
        )


def maildir_messages(path: Path) -> list[EmailMessage]:
    messages = []
    for folder in ("new", "cur"):
        for file in sorted((path / folder).glob("*")) if (path / folder).is_dir() else []:
            message = BytesParser(policy=policy.default).parsebytes(file.read_bytes())
            assert isinstance(message, EmailMessage)
            messages.append(message)
    return messages


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


async def invite(owner: Principal, clock: FixedClock, name: str) -> tuple[int, Invitation]:
    outcome = await invite_user(
        actor=owner,
        email=f"{name}@example.com",
        first_name="Invited",
        last_name=name,
        clock=clock,
    )
    return outcome.user.id, outcome.invitation


async def test_given_the_embedded_runner_when_time_passes_an_expiry_and_a_period_end_then_its_passes_expire_and_renew(  # noqa: E501
    db, clock, tmp_path
):
    assert clock.now() == START
    mail_dir = tmp_path / "mail"
    settings = Settings(
        public_url=PUBLIC_URL,
        mail_url=f"maildir://{mail_dir}",
        mail_from="Licenses <no-reply@licenses.test>",
    )
    created = await make_account(clock, seats=6)
    account_id = created.account_id
    owner = owner_principal(account_id, created.owner_user_id)
    runner = RecordingRunner(
        settings=settings,
        clock=clock,
        relay_seconds=0.2,
        scheduler_seconds=SCHEDULER_SECONDS,
        stop_timeout_seconds=10,
    )
    assert settings.redis_url is None and settings.embedded
    await runner.start()
    try:
        # --- (a) invitation expiry ------------------------------------------------------------
        expiring_id, expiring = await invite(owner, clock, "expiring")
        assert (await Account.get(id=account_id)).seats_in_use == 2
        await runner.more_passes(2)  # passes before the expiry change nothing
        assert (await Invitation.get(id=expiring.id)).status == InvitationStatus.PENDING

        clock.at = expiring.expires_at + timedelta(seconds=1)
        expired_at = clock.at

        async def invitation_expired() -> bool:
            invitation = await Invitation.get(id=expiring.id)
            return invitation.status == InvitationStatus.EXPIRED

        await wait_until(invitation_expired, within=WITHIN, what="the invitation to expire")
        # The pass that committed the expiry may not have returned yet: count it in.
        await runner.more_passes(1)
        passes_after_expiry = len(runner.passes)

        assert (await Account.get(id=account_id)).seats_in_use == 1
        assert (await User.get(id=expiring_id)).status == UserStatus.DISABLED
        (assignment,) = await LicenseAssignment.filter(user_id=expiring_id)
        assert assignment.end_reason == AssignmentEndReason.INVITATION_EXPIRED
        assert (assignment.unassigned_at, assignment.unassigned_by_kind) == (
            expired_at,
            ActorKind.SYSTEM,
        )
        (expiry_event,) = await AuditEvent.filter(
            account_id=account_id, action=AuditAction.INVITATION_EXPIRED
        )
        assert (expiry_event.actor_kind, expiry_event.target_user_id) == (
            ActorKind.SYSTEM,
            expiring_id,
        )

        # --- (b) period end with a scheduled reduction and a surplus --------------------------
        clock.at = march(18)
        await change_seat_count(
            actor=owner,
            total=2,
            accept_agreement=True,
            agreement_version=config.AGREEMENT_VERSION,
            clock=clock,
        )  # 1 in use (the owner): allowed; the 6 licences stay available until the period end
        clock.at = april(5)
        # Release order (SPEC): INVITED newest invitation first, then ENABLED non-owners
        # never active first, then by oldest activity. The owner, never active and the oldest
        # user, must never be chosen.
        recent = await add_user(
            account_id,
            email="recent@example.com",
            created_at=march(19),
            last_active_at=april(4),
            licensed=True,
        )
        stale = await add_user(
            account_id,
            email="stale@example.com",
            created_at=march(20),
            last_active_at=march(25),
            licensed=True,
        )
        idle = await add_user(
            account_id, email="idle@example.com", created_at=march(21), licensed=True
        )
        older_invited_id, _ = await invite(owner, clock, "older")
        clock.at = april(6)
        newer_invited_id, _ = await invite(owner, clock, "newer")
        before = await Account.get(id=account_id)
        assert (before.seats_total, before.seats_in_use, before.scheduled_total) == (6, 6, 2)
        assert before.current_period_end == PERIOD_END_AT
        await runner.more_passes(2)
        assert (await Account.get(id=account_id)).period_index == 0

        clock.at = PERIOD_END_AT  # a period whose end equals now has ended

        async def renewed() -> bool:
            return (await Account.get(id=account_id)).period_index == 1

        await wait_until(renewed, within=WITHIN, what="the period end")

        def released_email_arrived() -> bool:
            return any("released" in str(m["Subject"]) for m in maildir_messages(mail_dir))

        await wait_until(released_email_arrived, within=WITHIN, what="the LICENSES_RELEASED email")
        await runner.more_passes(3)  # later passes find nothing more to do
    finally:
        await runner.stop()

    # The runner did the work, in its periodic passes.
    assert not [
        (name, result)
        for results in runner.passes
        for name, result in results.items()
        if isinstance(result, BaseException)
    ]
    expiries = [results[EXPIRE_INVITATIONS] for results in runner.passes]
    assert expiries[:passes_after_expiry].count(1) == 1
    assert sum(n for n in expiries if isinstance(n, int)) == 1  # the overdue ones, once
    reports = [results[PERIOD_END] for results in runner.passes]
    assert all(isinstance(report, PeriodEndReport) for report in reports)
    renewing = [r for r in reports if isinstance(r, PeriodEndReport) and r.periods_renewed]
    assert [(r.periods_renewed, r.licenses_released) for r in renewing] == [(1, 4)]

    # Renewed once, on the reduced total.
    account = await Account.get(id=account_id)
    assert (account.seats_total, account.seats_in_use, account.scheduled_total) == (2, 2, None)
    assert (account.current_period_start, account.current_period_end) == (
        PERIOD_END_AT,
        datetime(2026, 5, 10, 12, 0, tzinfo=UTC),
    )
    renewals = await Charge.filter(account_id=account_id, kind=ChargeKind.RENEWAL)
    assert [
        (c.period_start, c.quantity, c.unit_amount_cents, c.amount_cents) for c in renewals
    ] == [(PERIOD_END_AT, 2, 1000, 2000)]
    assert (
        await AuditEvent.filter(account_id=account_id, action=AuditAction.PERIOD_RENEWED).count()
        == 1
    )

    # The surplus released in the SPEC's order; the owner and the most recently active kept.
    expected_order = [newer_invited_id, older_invited_id, idle.id, stale.id]
    (applied,) = await AuditEvent.filter(
        account_id=account_id, action=AuditAction.SEAT_REDUCTION_APPLIED
    )
    assert applied.actor_kind == ActorKind.SYSTEM
    assert applied.data == {"before": 6, "after": 2, "releasedUserIds": expected_order}
    statuses = {u.id: u.status for u in await User.filter(account_id=account_id)}
    assert statuses == {
        created.owner_user_id: UserStatus.ENABLED,
        recent.id: UserStatus.ENABLED,
        expiring_id: UserStatus.DISABLED,
        **dict.fromkeys(expected_order, UserStatus.DISABLED),
    }
    released_events = await AuditEvent.filter(
        account_id=account_id, action=AuditAction.LICENSE_RELEASED
    )
    assert sorted(e.target_user_id for e in released_events) == sorted(expected_order)
    assert {e.actor_kind for e in released_events} == {ActorKind.SYSTEM}
    for user_id in expected_order:
        (ended,) = await LicenseAssignment.filter(user_id=user_id)
        assert (ended.end_reason, ended.unassigned_by_kind, ended.unassigned_at) == (
            AssignmentEndReason.SEAT_REDUCTION,
            ActorKind.SYSTEM,
            PERIOD_END_AT,
        )
    for user_id in (newer_invited_id, older_invited_id):
        (revoked,) = await Invitation.filter(user_id=user_id)
        assert revoked.status == InvitationStatus.REVOKED
    open_assignments = await LicenseAssignment.filter(
        account_id=account_id, unassigned_at__isnull=True
    ).values_list("user_id", flat=True)
    assert sorted(open_assignments) == sorted([created.owner_user_id, recent.id])

    # The owner got the list, once, in the Maildir, in release order.
    released_emails = [m for m in maildir_messages(mail_dir) if "released" in str(m["Subject"])]
    (notice,) = released_emails
    assert [address for _, address in getaddresses([str(notice["To"])])] == ["owner@example.com"]
    assert str(notice["Subject"]) == "4 licences released in Acme"
    text = text_of(notice)
    listed = [
        line.split("<", 1)[1].rstrip(">")
        for line in text.splitlines()
        if line.startswith("- ") and "<" in line
    ]
    assert listed == [
        "newer@example.com",
        "older@example.com",
        "idle@example.com",
        "stale@example.com",
    ]
    assert "recent@example.com" not in text and "owner@example.com" not in listed
    # The invitation emails went to the Maildir too (delivered after each commit).
    invited_to = sorted(
        address
        for m in maildir_messages(mail_dir)
        if "invited" in str(m["Subject"])
        for _, address in getaddresses([str(m["To"])])
    )
    assert invited_to == ["expiring@example.com", "newer@example.com", "older@example.com"]
