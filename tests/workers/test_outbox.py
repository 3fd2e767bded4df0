"""The outbox job functions against a real SMTP server (aiosmtpd) and the
test database: claiming, building from current state, retries, relay, and
the embedded runner."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest

from domain.clock import SYSTEM_CLOCK
from domain.config import AGREEMENT_VERSION
from domain.enums import EmailKind, InvitationStatus, Role
from domain.models import Invitation, OutboxMessage, User
from domain.security import token_hash
from domain.services.invitations import invite_user, revoke_invitation
from domain.services.licensing import unassign_license
from domain.services.seats import change_seat_count
from domain.settings import Settings, SettingsError
from domain.uow import set_outbox_dispatcher
from tests.support.database import TEST_SECRET_KEY
from tests.support.delivery import PUBLIC_URL, REPO_ROOT, wait_until
from tests.support.factories import make_account
from tests.support.local_services import find_free_port
from tests.support.principals import owner_principal
from tests.support.smtp import SmtpCatcher, SmtpServer
from workers.embedded import EmbeddedRunner
from workers.outbox.delivery import deliver_due_messages, deliver_outbox_message
from workers.outbox.policy import DeliveryPolicy
from workers.outbox.relay import mark_enqueued, relay_outbox
from workers.outbox.results import DeliveryStatus

pytestmark = pytest.mark.anyio

SETTINGS = Settings(public_url=PUBLIC_URL, mail_from="Licenses <no-reply@licenses.test>")
POLICY = DeliveryPolicy(
    lease=timedelta(minutes=2), retry_base=timedelta(seconds=15), max_attempts=12
)


def test_retries_back_off_exponentially_up_to_the_cap():
    policy = DeliveryPolicy()

    delays = [policy.backoff(attempts).total_seconds() for attempts in (1, 2, 3, 8, 9, 40)]

    assert delays == [15, 30, 60, 1920, 3600, 3600]


def test_the_policy_is_tuned_from_the_settings():
    policy = DeliveryPolicy.from_settings(
        Settings.from_env({"OUTBOX_LEASE_SECONDS": "2", "OUTBOX_MAX_ATTEMPTS": "5"})
    )

    assert (policy.lease, policy.max_attempts) == (timedelta(seconds=2), 5)
    assert DeliveryPolicy.from_settings(Settings.from_env({})) == DeliveryPolicy()
    with pytest.raises(SettingsError, match="OUTBOX_LEASE_SECONDS"):
        Settings.from_env({"OUTBOX_LEASE_SECONDS": "soon"})


async def only_row() -> OutboxMessage:
    (row,) = await OutboxMessage.all()
    return row


async def test_given_a_new_account_when_its_row_is_delivered_then_the_owner_gets_a_link_matching_the_invitation(  # noqa: E501
    db, clock, smtp
):
    created = await make_account(clock)
    row = await only_row()

    outcome = await deliver_outbox_message(
        row.id, mailer=smtp.mailer(), clock=clock, settings=SETTINGS, policy=POLICY
    )

    assert outcome.status == DeliveryStatus.SENT
    (received,) = smtp.received
    assert received.rcpt_tos == ["owner@example.com"]
    assert received.message_id == f"<outbox-{row.id}@licenses.test>"
    invitation = await Invitation.get(user_id=created.owner_user_id)
    assert token_hash(received.accept_token(PUBLIC_URL)) == invitation.token_hash
    assert invitation.sent_at == clock.now()
    assert (invitation.delivery_attempts, invitation.last_delivery_error) == (1, None)
    row = await only_row()
    assert (row.sent_at, row.attempts, row.last_error) == (clock.now(), 1, None)


async def test_given_a_sent_row_when_it_is_delivered_again_then_nothing_is_sent(db, clock, smtp):
    await make_account(clock)
    row = await only_row()
    mailer = smtp.mailer()
    await deliver_outbox_message(row.id, mailer=mailer, clock=clock, settings=SETTINGS)

    again = await deliver_outbox_message(row.id, mailer=mailer, clock=clock, settings=SETTINGS)
    clock.advance(timedelta(hours=1))
    batch = await deliver_due_messages(limit=10, mailer=mailer, clock=clock, settings=SETTINGS)

    assert again.status == DeliveryStatus.ALREADY_DONE
    assert batch == []
    assert len(smtp.received) == 1
    assert (await only_row()).attempts == 1


async def test_given_a_row_claimed_by_one_delivery_when_a_duplicate_runs_at_once_then_one_email_leaves(  # noqa: E501
    db, clock
):
    handler = SmtpCatcher(delay_seconds=0.3)
    server = SmtpServer(handler).start()
    try:
        await make_account(clock)
        row = await only_row()

        outcomes = await asyncio.gather(
            *(
                deliver_outbox_message(
                    row.id, mailer=server.mailer(), clock=clock, settings=SETTINGS
                )
                for _ in range(3)
            )
        )
    finally:
        server.stop()

    assert sorted(outcome.status for outcome in outcomes) == sorted(
        [DeliveryStatus.SENT, DeliveryStatus.NOT_DUE, DeliveryStatus.NOT_DUE]
    )
    assert len(handler.received) == 1


async def test_given_smtp_down_when_delivering_then_the_failure_is_recorded_and_sent_once_it_is_back(  # noqa: E501
    db, clock
):
    created = await make_account(clock)
    row = await only_row()
    server = SmtpServer(port=find_free_port())  # not started: connection refused
    mailer = server.mailer()
    failed_at = clock.now()

    first = await deliver_outbox_message(
        row.id, mailer=mailer, clock=clock, settings=SETTINGS, policy=POLICY
    )

    assert first.status == DeliveryStatus.RETRY
    assert first.retry_at == failed_at + timedelta(seconds=15)
    row = await only_row()
    assert row.attempts == 1
    assert row.last_error is not None and "cannot connect" in row.last_error
    assert row.available_at == failed_at + timedelta(seconds=15)
    assert (row.sent_at, row.failed_at) == (None, None)
    invitation = await Invitation.get(user_id=created.owner_user_id)
    assert invitation.delivery_attempts == 1
    assert invitation.last_delivery_error == row.last_error
    assert invitation.sent_at is None

    # Not due yet: the next attempt waits for the backoff.
    early = await deliver_outbox_message(
        row.id, mailer=mailer, clock=clock, settings=SETTINGS, policy=POLICY
    )
    assert early.status == DeliveryStatus.NOT_DUE
    clock.advance(timedelta(seconds=15))
    second = await deliver_outbox_message(
        row.id, mailer=mailer, clock=clock, settings=SETTINGS, policy=POLICY
    )
    assert second.status == DeliveryStatus.RETRY
    assert second.retry_at == clock.now() + timedelta(seconds=30)

    server.start()
    try:
        clock.advance(timedelta(seconds=30))
        outcomes = await deliver_due_messages(
            limit=10, mailer=mailer, clock=clock, settings=SETTINGS, policy=POLICY
        )
        clock.advance(timedelta(hours=2))
        later = await deliver_due_messages(
            limit=10, mailer=mailer, clock=clock, settings=SETTINGS, policy=POLICY
        )
    finally:
        server.stop()

    assert [outcome.status for outcome in outcomes] == [DeliveryStatus.SENT]
    assert later == []
    assert len(server.received) == 1
    row = await only_row()
    assert (row.attempts, row.last_error) == (3, None)
    invitation = await Invitation.get(user_id=created.owner_user_id)
    assert (invitation.delivery_attempts, invitation.last_delivery_error) == (3, None)
    assert invitation.sent_at is not None


async def test_given_a_recipient_refused_with_550_when_delivering_then_the_row_fails_for_good(
    db, clock
):
    server = SmtpServer(SmtpCatcher(refusals={"owner@example.com": "550 5.1.1 No such user"}))
    server.start()
    try:
        created = await make_account(clock)
        row = await only_row()

        outcome = await deliver_outbox_message(
            row.id, mailer=server.mailer(), clock=clock, settings=SETTINGS
        )
        clock.advance(timedelta(days=1))
        later = await deliver_due_messages(
            limit=10, mailer=server.mailer(), clock=clock, settings=SETTINGS
        )
    finally:
        server.stop()

    assert outcome.status == DeliveryStatus.FAILED
    assert later == []
    row = await only_row()
    assert row.failed_at is not None and row.sent_at is None
    assert row.last_error is not None and "550" in row.last_error
    invitation = await Invitation.get(user_id=created.owner_user_id)
    assert invitation.last_delivery_error == row.last_error
    assert invitation.delivery_attempts == 1


async def test_given_temporary_failures_when_attempts_run_out_then_the_row_fails(db, clock):
    await make_account(clock)
    row = await only_row()
    mailer = SmtpServer(port=find_free_port()).mailer()
    policy = DeliveryPolicy(retry_base=timedelta(seconds=1), max_attempts=3)

    statuses = []
    for _ in range(3):
        outcome = await deliver_outbox_message(
            row.id, mailer=mailer, clock=clock, settings=SETTINGS, policy=policy
        )
        statuses.append(outcome.status)
        clock.advance(timedelta(minutes=1))

    assert statuses == [DeliveryStatus.RETRY, DeliveryStatus.RETRY, DeliveryStatus.FAILED]
    row = await only_row()
    assert row.failed_at is not None and row.attempts == 3


async def test_given_a_revoked_invitation_when_its_email_is_due_then_it_is_not_sent(
    db, clock, smtp
):
    created = await make_account(clock)
    owner = owner_principal(created.account_id, created.owner_user_id)
    invited = await invite_user(
        actor=owner, email="ivy@example.com", first_name="Ivy", last_name="Invitee", clock=clock
    )
    await revoke_invitation(actor=owner, user_id=str(invited.user.id), clock=clock)

    outcomes = await deliver_due_messages(
        limit=10, mailer=smtp.mailer(), clock=clock, settings=SETTINGS
    )

    by_kind = {
        (await OutboxMessage.get(id=outcome.message_id)).kind: outcome.status
        for outcome in outcomes
    }
    assert by_kind == {
        EmailKind.OWNER_PASSWORD_SET: DeliveryStatus.SENT,
        EmailKind.INVITATION: DeliveryStatus.SKIPPED,
    }
    assert [received.rcpt_tos for received in smtp.received] == [["owner@example.com"]]
    skipped = await OutboxMessage.get(kind=EmailKind.INVITATION)
    assert skipped.sent_at is not None
    assert skipped.last_error is not None and "REVOKED" in skipped.last_error
    invitation = await Invitation.get(id=invited.invitation.id)
    assert (invitation.status, invitation.sent_at) == (InvitationStatus.REVOKED, None)


async def test_given_every_kind_of_service_email_when_due_then_one_connection_sends_them_all(
    db, clock, smtp
):
    created = await make_account(clock)
    owner = owner_principal(created.account_id, created.owner_user_id)
    invited = await invite_user(
        actor=owner, email="ivy@example.com", first_name="Ivy", last_name="Invitee", clock=clock
    )
    await unassign_license(actor=owner, user_id=str(invited.user.id), clock=clock)
    await change_seat_count(
        actor=owner,
        total=8,
        accept_agreement=True,
        agreement_version=AGREEMENT_VERSION,
        clock=clock,
    )
    # The billing job's shape (domain/services/billing.py), without a whole period end.
    await OutboxMessage.create(
        account_id=created.account_id,
        kind=EmailKind.LICENSES_RELEASED,
        payload={
            "accountId": created.account_id,
            "recipientUserId": None,
            "userIds": [invited.user.id],
            "newTotal": 3,
        },
        created_at=clock.now(),
        available_at=clock.now(),
    )

    outcomes = await deliver_due_messages(
        limit=50, mailer=smtp.mailer(), clock=clock, settings=SETTINGS
    )

    kinds = {
        (await OutboxMessage.get(id=outcome.message_id)).kind: outcome.status
        for outcome in outcomes
    }
    assert kinds == {
        EmailKind.OWNER_PASSWORD_SET: DeliveryStatus.SENT,
        # Revoked by the unassignment before it left.
        EmailKind.INVITATION: DeliveryStatus.SKIPPED,
        EmailKind.LICENSE_REMOVED: DeliveryStatus.SENT,
        EmailKind.SEAT_CHANGE_RECEIPT: DeliveryStatus.SENT,
        EmailKind.LICENSES_RELEASED: DeliveryStatus.SENT,
    }
    assert smtp.handler.ehlo_count == 1
    recipients = sorted(received.rcpt_tos[0] for received in smtp.received)
    assert recipients == [
        "ivy@example.com",
        "owner@example.com",
        "owner@example.com",
        "owner@example.com",
    ]
    released = next(r for r in smtp.received if "ivy@example.com" in r.text and "Ivy" in r.text)
    assert released is not None


async def test_given_an_ownership_transfer_when_due_then_both_owners_are_emailed(db, clock, smtp):
    from domain.services.ownership import transfer_ownership  # noqa: PLC0415

    created = await make_account(clock)
    owner = owner_principal(created.account_id, created.owner_user_id)
    target = await User.create(
        account_id=created.account_id,
        email="tess@example.com",
        email_key="tess@example.com",
        first_name="Tess",
        last_name="Target",
        sort_name="tess target",
        role=Role.ADMIN,
        status="ENABLED",
        created_at=clock.now(),
    )
    await transfer_ownership(actor=owner, user_id=str(target.id), clock=clock)
    await OutboxMessage.filter(kind=EmailKind.OWNER_PASSWORD_SET).delete()

    outcomes = await deliver_due_messages(
        limit=10, mailer=smtp.mailer(), clock=clock, settings=SETTINGS
    )

    assert [outcome.status for outcome in outcomes] == [DeliveryStatus.SENT] * 2
    assert sorted(received.rcpt_tos[0] for received in smtp.received) == [
        "owner@example.com",
        "tess@example.com",
    ]


async def test_given_a_malformed_payload_when_due_then_the_row_fails_with_a_clear_error(
    db, clock, smtp
):
    row = await OutboxMessage.create(
        kind=EmailKind.LICENSE_REMOVED,
        payload={"user": 1},
        created_at=clock.now(),
        available_at=clock.now(),
    )

    outcome = await deliver_outbox_message(
        row.id, mailer=smtp.mailer(), clock=clock, settings=SETTINGS
    )

    assert outcome.status == DeliveryStatus.FAILED
    row = await OutboxMessage.get(id=row.id)
    assert row.last_error is not None and "'userId'" in row.last_error
    assert smtp.received == []


async def test_given_a_committed_row_never_enqueued_when_the_relay_runs_then_it_is_enqueued_once_per_redelivery_period(  # noqa: E501
    db, clock, smtp
):
    await make_account(clock)  # no dispatcher: as if the process died after commit
    row = await only_row()
    enqueued: list[list[int]] = []

    async def enqueue(ids):
        enqueued.append(list(ids))

    first = await relay_outbox(clock=clock, enqueue=enqueue, policy=POLICY)
    again = await relay_outbox(clock=clock, enqueue=enqueue, policy=POLICY)
    clock.advance(POLICY.redeliver_after)
    after_period = await relay_outbox(clock=clock, enqueue=enqueue, policy=POLICY)
    await deliver_outbox_message(row.id, mailer=smtp.mailer(), clock=clock, settings=SETTINGS)
    clock.advance(POLICY.lease * 2)
    after_sending = await relay_outbox(clock=clock, enqueue=enqueue, policy=POLICY)

    assert (first, again, after_period, after_sending) == (1, 0, 1, 0)
    assert enqueued == [[row.id], [row.id]]
    # The claim consumed the hand-off.
    assert (await only_row()).enqueued_at is None


async def test_given_one_message_never_started_and_one_whose_sender_died_when_the_relay_runs_then_the_first_is_handed_over_after_a_scheduler_interval_and_the_second_after_its_lease(  # noqa: E501
    db, clock
):
    policy = DeliveryPolicy.from_settings(
        Settings.from_env({"OUTBOX_LEASE_SECONDS": "600", "SCHEDULER_INTERVAL_SECONDS": "60"})
    )
    await make_account(clock, email="first@example.com", name="First")
    await make_account(clock, email="second@example.com", name="Second")
    never_started, died_sending = await OutboxMessage.all().order_by("id")
    # Both handed to the broker after commit.
    await mark_enqueued([never_started.id, died_sending.id], at=clock.now())
    # The second one's worker claims it, reaches DATA and dies there.
    handler = SmtpCatcher(delay_seconds=30)
    server = SmtpServer(handler).start()
    try:
        sending = asyncio.create_task(
            deliver_outbox_message(
                died_sending.id,
                mailer=server.mailer(),
                clock=clock,
                settings=SETTINGS,
                policy=policy,
            )
        )
        await wait_until(lambda: len(handler.received) == 1, within=5, what="DATA")
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
    finally:
        server.stop()
    relayed: list[list[int]] = []

    async def enqueue(ids):
        relayed.append(list(ids))

    clock.advance(timedelta(seconds=60))
    after_an_interval = await relay_outbox(clock=clock, enqueue=enqueue, policy=policy)
    clock.advance(timedelta(seconds=600 - 60))
    after_the_lease = await relay_outbox(clock=clock, enqueue=enqueue, policy=policy)

    assert (after_an_interval, after_the_lease) == (1, 2)
    assert relayed[0] == [never_started.id]
    assert sorted(relayed[1]) == [never_started.id, died_sending.id]


async def test_given_a_send_outlasting_its_lease_when_delivering_then_it_is_cut_and_recorded_as_a_retry(  # noqa: E501
    db, clock
):
    # The server answers DATA after 3 s (within the mailer's 5 s timeout);
    # the lease is 1 s. Left alone, the send would still run when another
    # worker may claim the row again.
    policy = DeliveryPolicy(lease=timedelta(seconds=1))
    server = SmtpServer(SmtpCatcher(delay_seconds=3)).start()
    try:
        created = await make_account(clock)
        row = await only_row()

        outcome = await deliver_outbox_message(
            row.id, mailer=server.mailer(), clock=clock, settings=SETTINGS, policy=policy
        )
    finally:
        server.stop()

    assert outcome.status == DeliveryStatus.RETRY
    assert outcome.retry_at == clock.now() + policy.backoff(1)
    row = await only_row()
    assert row.sent_at is None and row.available_at == outcome.retry_at
    assert row.last_error is not None and "not finished within" in row.last_error
    invitation = await Invitation.get(user_id=created.owner_user_id)
    assert invitation.last_delivery_error == row.last_error


async def test_given_the_broker_down_when_the_relay_enqueues_then_the_rows_stay_relayable(
    db, clock
):
    await make_account(clock)

    async def broken(ids):
        raise ConnectionError("redis down")

    async def working(ids):
        return None

    with pytest.raises(ConnectionError):
        await relay_outbox(clock=clock, enqueue=broken)
    row = await only_row()

    assert row.enqueued_at is None
    assert await relay_outbox(clock=clock, enqueue=working) == 1


async def test_given_an_embedded_runner_when_a_request_commits_then_the_email_leaves_at_once(
    db, real_now_clock, smtp
):
    runner = EmbeddedRunner(
        settings=SETTINGS,
        clock=real_now_clock,
        mailer=smtp.mailer(),
        relay_seconds=60,
        scheduler_seconds=60,
    )
    await runner.start()
    try:
        await asyncio.sleep(0.1)  # the first periodic pass finds nothing
        await make_account(real_now_clock)
        took = await wait_until(lambda: len(smtp.received) == 1, within=5, what="the email")
    finally:
        await runner.stop()

    assert took < 5  # long before the 60 s periodic pass: the commit handed it over
    assert (await only_row()).sent_at is not None


CREATE_IN_ANOTHER_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    from domain import config
    from domain.clock import SYSTEM_CLOCK
    from domain.db import close_database, init_database
    from domain.services.accounts import create_account

    async def main():
        config.configure(config.DomainConfig(secret_key=sys.argv[2].encode()))
        await init_database(sys.argv[1])
        try:
            await create_account(
                name="Other", owner_email="cli@example.com", owner_first_name="Cli",
                owner_last_name="User", seats=2, seat_price_cents=100, clock=SYSTEM_CLOCK,
            )
        finally:
            await close_database()

    asyncio.run(main())
    """
)


async def test_given_an_embedded_runner_when_another_process_commits_a_row_then_it_is_delivered_within_the_period(  # noqa: E501
    db, smtp
):
    runner = EmbeddedRunner(
        settings=SETTINGS,
        clock=SYSTEM_CLOCK,
        mailer=smtp.mailer(),
        relay_seconds=1,
        scheduler_seconds=60,
    )
    await runner.start()
    try:
        other = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CREATE_IN_ANOTHER_PROCESS,
            db,
            TEST_SECRET_KEY.decode(),
            PUBLIC_URL,
            cwd=REPO_ROOT,
            stderr=subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(other.communicate(), timeout=30)
        assert other.returncode == 0, stderr.decode()
        took = await wait_until(lambda: len(smtp.received) == 1, within=5, what="the email")
    finally:
        await runner.stop()

    assert took <= 2.5  # the 1 s period, plus the delivery itself
    (received,) = smtp.received
    assert received.rcpt_tos == ["cli@example.com"]
    invitation = await Invitation.get(email="cli@example.com")
    assert token_hash(received.accept_token(PUBLIC_URL)) == invitation.token_hash


async def test_given_a_delivery_in_progress_when_the_embedded_runner_stops_then_it_waits_for_it(
    db, real_now_clock
):
    server = SmtpServer(SmtpCatcher(delay_seconds=0.5)).start()
    runner = EmbeddedRunner(
        settings=SETTINGS,
        clock=real_now_clock,
        mailer=server.mailer(),
        relay_seconds=60,
        scheduler_seconds=60,
    )
    try:
        await runner.start()
        await asyncio.sleep(0.1)
        await make_account(real_now_clock)
        await wait_until(lambda: len(server.received) == 1, within=5, what="DATA")
        await runner.stop()
    finally:
        server.stop()

    assert (await only_row()).sent_at is not None
    set_outbox_dispatcher(None)
