"""Webhooks end to end in one process: the services write the events, the
outbox delivery POSTs them to a real receiver on loopback, and the
standardwebhooks library verifies what arrived."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import standardwebhooks

from domain import config
from domain.clock import SYSTEM_CLOCK, Clock, FixedClock
from domain.enums import (
    WEBHOOK_OUTBOX_KIND,
    EmailKind,
    UserStatus,
    WebhookDeliveryStatus,
    WebhookEventType,
)
from domain.models import Account, OutboxMessage, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from domain.principal import Principal
from domain.services.accounts import CreatedAccount
from domain.services.billing import run_period_end
from domain.services.invitations import (
    invite_user,
    resend_invitation,
    revoke_invitation,
)
from domain.services.licensing import assign_license, unassign_license
from domain.services.ownership import transfer_ownership
from domain.services.profile import update_user
from domain.services.seats import cancel_scheduled_seat_change, change_seat_count
from domain.services.webhooks import (
    create_webhook_endpoint,
    redeliver_webhook,
    rotate_webhook_secret,
)
from domain.settings import Settings
from tests.support.delivery import wait_until
from tests.support.factories import accept_pending_invitation, add_user, make_account
from tests.support.principals import owner_principal
from tests.support.smtp import SmtpServer
from tests.support.webhook_receiver import WebhookReceiver
from workers.embedded import EmbeddedRunner
from workers.outbox.compose import Prepared, prepare_email
from workers.outbox.delivery import deliver_outbox_message
from workers.outbox.policy import DeliveryPolicy
from workers.outbox.results import DeliveryOutcome, DeliveryStatus
from workers.webhooks import client as webhook_client
from workers.webhooks import guard
from workers.webhooks.sending import close_clients

pytestmark = pytest.mark.anyio

DEVELOPMENT = Settings(environment="development")
PRODUCTION = Settings(environment="production", secret_key="x" * 40)
POLICY = DeliveryPolicy(webhook_schedule=(timedelta(seconds=1),) * 3)
AGREED = {"accept_agreement": True, "agreement_version": config.AGREEMENT_VERSION}


class NoMail:
    async def send(self, email: object) -> None:
        raise AssertionError("webhook rows never reach the mailer")

    async def send_batch(self, emails: object) -> list[None]:
        raise AssertionError("webhook rows never reach the mailer")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture(autouse=True)
def development_urls(domain_config: config.DomainConfig) -> None:
    config.configure_with(webhook_development=True)


@pytest.fixture
async def real_account(db: str, real_now_clock: FixedClock) -> CreatedAccount:
    return await make_account(real_now_clock)


@pytest.fixture
async def http_clients() -> Any:
    yield
    await close_clients()


async def deliver_webhooks(
    clock: Clock, *, settings: Settings = DEVELOPMENT, policy: DeliveryPolicy = POLICY
) -> list[DeliveryOutcome]:
    """One pass over the due webhook rows, as a worker would take them."""
    rows = await OutboxMessage.filter(
        kind=WEBHOOK_OUTBOX_KIND,
        sent_at__isnull=True,
        failed_at__isnull=True,
        available_at__lte=clock.now(),
    ).order_by("id")
    return [
        await deliver_outbox_message(
            row.id, mailer=NoMail(), clock=clock, settings=settings, policy=policy
        )
        for row in rows
    ]


def events(receiver: WebhookReceiver, secret: str) -> list[tuple[str, dict[str, Any]]]:
    return [(body["type"], body["data"]) for body in receiver.verified(secret)]


async def test_given_an_endpoint_for_every_type_when_users_seats_and_ownership_change_then_each_event_arrives_verified_with_its_data(  # noqa: E501
    real_account: CreatedAccount,
    real_now_clock: FixedClock,
    receiver: WebhookReceiver,
    http_clients: None,
):
    clock = real_now_clock
    owner = owner_principal(real_account.account_id, real_account.owner_user_id)
    created = await create_webhook_endpoint(actor=owner, url=receiver.url, clock=clock)
    assert created.secret is not None
    account = str(real_account.account_id)
    invited = await invite_user(
        actor=owner, email="ada@example.com", first_name="Ada", last_name="L", clock=clock
    )
    ada = str(invited.user.id)
    await resend_invitation(actor=owner, user_id=ada, clock=clock)
    await revoke_invitation(actor=owner, user_id=ada, clock=clock)
    await assign_license(actor=owner, user_id=ada, clock=clock)
    await accept_pending_invitation(invited.user.id, clock)
    await update_user(actor=owner, user_id=ada, first_name="Augusta", clock=clock)
    await unassign_license(actor=owner, user_id=ada, clock=clock)
    increase = await change_seat_count(actor=owner, total=7, clock=clock, **AGREED)
    await change_seat_count(actor=owner, total=6, clock=clock, **AGREED)
    await cancel_scheduled_seat_change(actor=owner, clock=clock)
    await assign_license(actor=owner, user_id=ada, clock=clock)
    await transfer_ownership(actor=owner, user_id=ada, clock=clock)

    outcomes = await deliver_webhooks(clock)

    assert {outcome.status for outcome in outcomes} == {DeliveryStatus.SENT}
    received = events(receiver, created.secret)
    assert [kind for kind, _ in received] == [
        "user.invited",
        "invitation.resent",
        "invitation.revoked",
        "license.assigned",
        "invitation.accepted",
        "user.updated",
        "license.unassigned",
        "seats.increased",
        "seats.reduction_scheduled",
        "seats.reduction_cancelled",
        "license.assigned",
        "ownership.transferred",
    ]
    user_event = {"accountId": account, "userId": ada}
    assert all(data == user_event for _, data in received[:7])
    charge = increase.charge
    assert charge is not None
    assert received[7][1] == {
        "accountId": account,
        "previousTotal": 5,
        "total": 7,
        "effectiveAt": clock.now().isoformat(),
        "chargeId": str(charge.id),
        "amountCents": charge.amount_cents,
        "currency": "USD",
    }
    reduction_at = received[8][1]["effectiveAt"]
    assert received[8][1] == {
        "accountId": account,
        "previousTotal": 7,
        "total": 6,
        "effectiveAt": reduction_at,
    }
    assert received[9][1] == {
        "accountId": account,
        "previousTotal": 6,
        "total": 7,
        "effectiveAt": clock.now().isoformat(),
    }
    assert received[11][1] == {
        "accountId": account,
        "previousOwnerId": str(owner.user_id),
        "newOwnerId": ada,
    }


async def test_given_a_reduction_and_an_overdue_invitation_when_the_period_ends_then_expired_released_applied_and_renewed_arrive(  # noqa: E501
    account: CreatedAccount,
    owner: Principal,
    clock: FixedClock,
    receiver: WebhookReceiver,
    http_clients: None,
):
    await create_webhook_endpoint(actor=owner, url=receiver.url, clock=clock)
    await change_seat_count(actor=owner, total=2, clock=clock, **AGREED)
    members = [
        await add_user(
            account.account_id, email=f"m{n}@example.com", created_at=clock.now(), licensed=True
        )
        for n in range(2)
    ]
    late = await add_user(
        account.account_id,
        email="late@example.com",
        created_at=clock.now(),
        status=UserStatus.INVITED,
        licensed=True,
        invitation_expires_at=clock.now() + timedelta(days=1),
    )
    await OutboxMessage.filter(kind=WEBHOOK_OUTBOX_KIND).delete()
    await WebhookDelivery.all().delete()
    clock.at = (await Account.get(id=account.account_id)).current_period_end + timedelta(minutes=1)

    await run_period_end(clock=clock)
    await deliver_webhooks(clock)

    by_type = {
        body["type"]: body["data"] for body in (json.loads(r.body) for r in receiver.accepted())
    }
    account_id = str(account.account_id)
    assert by_type["invitation.expired"] == {"accountId": account_id, "userId": str(late.id)}
    released = by_type["license.released"]
    assert released["reason"] == "SEAT_REDUCTION"
    assert released["userId"] in {str(member.id) for member in members}
    assert by_type["seats.reduction_applied"] == {
        "accountId": account_id,
        "previousTotal": 5,
        "total": 2,
        "effectiveAt": clock.now().isoformat(),
    }
    renewed = by_type["period.renewed"]
    assert (renewed["accountId"], renewed["total"], renewed["amountCents"]) == (
        account_id,
        2,
        2000,
    )
    assert renewed["chargeId"] is not None
    assert set(renewed) == {
        "accountId",
        "periodStart",
        "periodEnd",
        "total",
        "chargeId",
        "amountCents",
    }


async def invite_someone(owner: Principal, clock: Clock) -> None:
    await invite_user(
        actor=owner, email="ada@example.com", first_name="Ada", last_name="L", clock=clock
    )


async def only_delivery() -> WebhookDelivery:
    (delivery,) = await WebhookDelivery.all()
    return delivery


async def test_given_a_receiver_down_then_failing_then_slow_when_it_recovers_then_the_event_arrives_with_the_same_webhook_id_and_every_attempt_is_logged(  # noqa: E501
    real_account: CreatedAccount,
    real_now_clock: FixedClock,
    receiver: WebhookReceiver,
    http_clients: None,
    monkeypatch: pytest.MonkeyPatch,
):
    clock = real_now_clock
    owner = owner_principal(real_account.account_id, real_account.owner_user_id)
    created = await create_webhook_endpoint(actor=owner, url=receiver.url, clock=clock)
    await invite_someone(owner, clock)
    receiver.stop()
    refused = await deliver_webhooks(clock)
    receiver.start()
    receiver.status = 500
    clock.advance(timedelta(seconds=2))
    failed = await deliver_webhooks(clock)
    receiver.status, receiver.delay = 200, 1.0
    monkeypatch.setattr(webhook_client, "TIMEOUT_SECONDS", 0.2)
    clock.advance(timedelta(seconds=2))
    timed_out = await deliver_webhooks(clock)
    receiver.delay = 0
    monkeypatch.setattr(webhook_client, "TIMEOUT_SECONDS", 10.0)
    clock.advance(timedelta(seconds=2))

    sent = await deliver_webhooks(clock)

    assert [o.status for o in refused + failed + timed_out + sent] == [
        DeliveryStatus.RETRY,
        DeliveryStatus.RETRY,
        DeliveryStatus.RETRY,
        DeliveryStatus.SENT,
    ]
    assert created.secret is not None
    assert [body["type"] for body in receiver.verified(created.secret)] == ["user.invited"]
    ids = {r.webhook_id for r in receiver.received}
    delivery = await only_delivery()
    assert ids == {delivery.event_id}
    assert (delivery.status, delivery.attempts, delivery.last_response_status) == (
        WebhookDeliveryStatus.SUCCEEDED,
        4,
        200,
    )
    attempts = await WebhookAttempt.filter(delivery_id=delivery.id).order_by("id")
    assert [a.response_status for a in attempts] == [None, 500, None, 200]
    assert attempts[0].error is not None and "ConnectError" in attempts[0].error
    assert attempts[1].error == "HTTP 500"
    assert attempts[2].error == "no answer within 0.2 s"


async def test_given_a_receiver_answering_410_when_delivered_then_the_endpoint_is_disabled_and_nothing_more_is_sent(  # noqa: E501
    real_account: CreatedAccount,
    real_now_clock: FixedClock,
    receiver: WebhookReceiver,
    http_clients: None,
):
    clock = real_now_clock
    owner = owner_principal(real_account.account_id, real_account.owner_user_id)
    await create_webhook_endpoint(actor=owner, url=receiver.url, clock=clock)
    receiver.status = 410
    await invite_someone(owner, clock)

    outcomes = await deliver_webhooks(clock)
    await change_seat_count(actor=owner, total=6, clock=clock, **AGREED)
    later = await deliver_webhooks(clock)

    assert [o.status for o in outcomes] == [DeliveryStatus.FAILED]
    endpoint = await WebhookEndpoint.get()
    assert (endpoint.enabled, endpoint.disabled_reason) == (
        False,
        "The endpoint answered 410 Gone.",
    )
    assert later == []
    assert len(receiver.received) == 1
    assert not await OutboxMessage.filter(kind=EmailKind.WEBHOOK_ENDPOINT_DISABLED).exists()


async def test_given_an_endpoint_failing_for_three_days_when_the_next_attempt_fails_then_it_is_disabled(  # noqa: E501
    account: CreatedAccount,
    owner: Principal,
    clock: FixedClock,
    receiver: WebhookReceiver,
    http_clients: None,
):
    await create_webhook_endpoint(actor=owner, url=receiver.url, clock=clock)
    receiver.status = 503
    policy = DeliveryPolicy(webhook_schedule=(timedelta(hours=20),) * 20)
    await invite_someone(owner, clock)
    statuses = []
    for _ in range(4):
        statuses += [o.status for o in await deliver_webhooks(clock, policy=policy)]
        clock.advance(timedelta(hours=20))
    still_enabled = (await WebhookEndpoint.get()).enabled

    statuses += [o.status for o in await deliver_webhooks(clock, policy=policy)]

    # Failing since the first attempt: 80 hours later the fifth failure disables.
    assert statuses == [DeliveryStatus.RETRY] * 4 + [DeliveryStatus.FAILED]
    assert still_enabled is True
    endpoint = await WebhookEndpoint.get()
    assert (endpoint.enabled, endpoint.disabled_reason) == (
        False,
        "Every delivery failed for three days.",
    )
    assert (await only_delivery()).status == WebhookDeliveryStatus.FAILED
    notice = await OutboxMessage.get(kind=EmailKind.WEBHOOK_ENDPOINT_DISABLED)
    prepared = await prepare_email(notice, settings=DEVELOPMENT, now=clock.now())
    assert isinstance(prepared, Prepared)
    assert prepared.email.to_address == "owner@example.com"
    assert receiver.url in prepared.email.text
    assert "failed for three days" in prepared.email.text


async def test_given_the_retry_schedule_when_every_attempt_fails_then_the_delivery_fails_after_its_last_attempt(  # noqa: E501
    real_account: CreatedAccount,
    real_now_clock: FixedClock,
    receiver: WebhookReceiver,
    http_clients: None,
):
    clock = real_now_clock
    owner = owner_principal(real_account.account_id, real_account.owner_user_id)
    await create_webhook_endpoint(actor=owner, url=receiver.url, clock=clock)
    receiver.status = 500
    await invite_someone(owner, clock)
    statuses = []
    for _ in range(5):
        statuses += [o.status for o in await deliver_webhooks(clock)]
        clock.advance(timedelta(seconds=2))

    assert statuses == [DeliveryStatus.RETRY] * 3 + [DeliveryStatus.FAILED]
    assert len(receiver.received) == 4
    assert (await WebhookEndpoint.get()).enabled is True


def test_the_default_schedule_spans_about_three_days_and_the_setting_shortens_it():
    default = DeliveryPolicy.from_settings(Settings.from_env({}))
    short = DeliveryPolicy.from_settings(Settings.from_env({"WEBHOOK_RETRY_SCHEDULE": "1,2"}))

    span = sum(default.webhook_schedule, timedelta())
    assert timedelta(days=2.5) < span < timedelta(days=3.5)
    assert short.webhook_schedule == (timedelta(seconds=1), timedelta(seconds=2))
    assert (short.webhook_retry_at(2), short.webhook_retry_at(3)) == (timedelta(seconds=2), None)


async def test_given_a_rotated_secret_when_delivered_within_24_hours_then_both_secrets_verify_and_after_only_the_new(  # noqa: E501
    real_account: CreatedAccount,
    real_now_clock: FixedClock,
    receiver: WebhookReceiver,
    http_clients: None,
):
    clock = real_now_clock
    owner = owner_principal(real_account.account_id, real_account.owner_user_id)
    created = await create_webhook_endpoint(actor=owner, url=receiver.url, clock=clock)
    rotated = await rotate_webhook_secret(
        actor=owner, endpoint_id=str(created.endpoint.id), clock=clock
    )
    await invite_someone(owner, clock)
    await deliver_webhooks(clock)
    (during,) = receiver.accepted()
    receiver.received.clear()
    clock.advance(timedelta(hours=24, seconds=1))
    await change_seat_count(actor=owner, total=6, clock=clock, **AGREED)
    await deliver_webhooks(clock)
    (after,) = receiver.accepted()

    assert created.secret and rotated.secret and created.secret != rotated.secret
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (created.secret, rotated.secret):
        standardwebhooks.Webhook(secret).verify(during.body, during.headers)
    # Signed a day ahead of real time, past the library's 5-minute window:
    # its own signing stands in for verify.
    signed = after.headers["webhook-id"], clock.now(), after.body
    assert after.headers["webhook-signature"] == standardwebhooks.Webhook(rotated.secret).sign(
        *signed
    )
    assert (
        standardwebhooks.Webhook(created.secret).sign(*signed)
        not in (after.headers["webhook-signature"])
    )


async def test_given_a_delivered_event_when_an_admin_redelivers_it_then_it_arrives_again_with_the_same_webhook_id(  # noqa: E501
    real_account: CreatedAccount,
    real_now_clock: FixedClock,
    receiver: WebhookReceiver,
    http_clients: None,
):
    clock = real_now_clock
    owner = owner_principal(real_account.account_id, real_account.owner_user_id)
    created = await create_webhook_endpoint(actor=owner, url=receiver.url, clock=clock)
    await invite_someone(owner, clock)
    await deliver_webhooks(clock)
    first = await only_delivery()

    again = await redeliver_webhook(actor=owner, delivery_id=str(first.id), clock=clock)
    await deliver_webhooks(clock)

    assert created.secret is not None
    assert len(receiver.verified(created.secret)) == 2
    assert {r.webhook_id for r in receiver.accepted()} == {first.event_id}
    assert again.id != first.id
    assert (await WebhookDelivery.get(id=again.id)).status == WebhookDeliveryStatus.SUCCEEDED


async def test_given_an_endpoint_for_one_type_when_other_events_happen_then_only_that_type_is_written(  # noqa: E501
    account: CreatedAccount, owner: Principal, clock: FixedClock, receiver: WebhookReceiver
):
    await create_webhook_endpoint(
        actor=owner,
        url=receiver.url,
        event_types=[WebhookEventType.SEATS_INCREASED],
        clock=clock,
    )
    await invite_someone(owner, clock)
    await change_seat_count(actor=owner, total=6, clock=clock, **AGREED)

    deliveries = await WebhookDelivery.all().select_related("event")

    assert [d.event.event_type for d in deliveries] == ["SEATS_INCREASED"]


async def test_given_production_mode_when_an_endpoint_resolves_to_loopback_then_nothing_is_sent(
    real_account: CreatedAccount,
    real_now_clock: FixedClock,
    receiver: WebhookReceiver,
    http_clients: None,
):
    clock = real_now_clock
    owner = owner_principal(real_account.account_id, real_account.owner_user_id)
    # Saved in development (http, a name), delivered by a production worker.
    url = receiver.url.replace("127.0.0.1", "localhost")
    await create_webhook_endpoint(actor=owner, url=url, clock=clock)
    await invite_someone(owner, clock)

    outcomes = await deliver_webhooks(clock, settings=PRODUCTION)

    assert [o.status for o in outcomes] == [DeliveryStatus.RETRY]
    assert receiver.received == []
    delivery = await only_delivery()
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("refused: localhost resolves to a refused address")


async def test_given_the_embedded_runner_when_an_event_commits_then_it_is_delivered_on_the_servers_loop_and_a_due_retry_by_the_periodic_pass(  # noqa: E501
    real_account: CreatedAccount,
    real_now_clock: FixedClock,
    receiver: WebhookReceiver,
    smtp: SmtpServer,
):
    owner = owner_principal(real_account.account_id, real_account.owner_user_id)
    created = await create_webhook_endpoint(actor=owner, url=receiver.url, clock=real_now_clock)
    runner = EmbeddedRunner(
        settings=DEVELOPMENT,
        clock=SYSTEM_CLOCK,
        mailer=smtp.mailer(),
        policy=POLICY,
        relay_seconds=0.2,
        scheduler_seconds=60,
    )
    await runner.start()
    try:
        receiver.status = 500
        await invite_someone(owner, real_now_clock)
        await wait_until(lambda: len(receiver.received) == 1, within=5, what="the first attempt")
        receiver.status = 200
        await wait_until(lambda: len(receiver.accepted()) == 1, within=10, what="the retry")
    finally:
        await runner.stop()

    assert created.secret is not None
    assert [body["type"] for body in receiver.verified(created.secret)] == ["user.invited"]
    assert len({r.webhook_id for r in receiver.received}) == 1


async def test_given_production_mode_when_a_name_resolves_to_a_public_and_a_private_address_then_it_is_refused_without_connecting(  # noqa: E501
    real_account: CreatedAccount,
    real_now_clock: FixedClock,
    receiver: WebhookReceiver,
    http_clients: None,
    monkeypatch: pytest.MonkeyPatch,
):
    clock = real_now_clock
    owner = owner_principal(real_account.account_id, real_account.owner_user_id)
    await create_webhook_endpoint(actor=owner, url="https://hooks.example.com/x", clock=clock)
    lookups: list[str] = []

    async def resolver(host: str, port: int, **_: object) -> list[tuple[Any, ...]]:
        lookups.append(host)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.8", port)),
        ]

    monkeypatch.setattr(guard.anyio, "getaddrinfo", resolver)
    await invite_someone(owner, clock)

    outcomes = await deliver_webhooks(clock, settings=PRODUCTION)

    assert [o.status for o in outcomes] == [DeliveryStatus.RETRY]
    assert lookups == ["hooks.example.com"]
    delivery = await only_delivery()
    assert delivery.last_error == (
        "refused: hooks.example.com resolves to a refused address (10.0.0.8)"
    )


async def test_given_a_name_when_delivered_then_the_connection_goes_to_the_resolved_address_with_the_original_host_header(  # noqa: E501
    real_account: CreatedAccount,
    real_now_clock: FixedClock,
    receiver: WebhookReceiver,
    http_clients: None,
    monkeypatch: pytest.MonkeyPatch,
):
    clock = real_now_clock
    owner = owner_principal(real_account.account_id, real_account.owner_user_id)
    url = f"http://hooks.example.test:{receiver.port}/hooks"
    await create_webhook_endpoint(actor=owner, url=url, clock=clock)

    async def resolver(host: str, port: int, **_: object) -> list[tuple[Any, ...]]:
        assert host == "hooks.example.test"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(guard.anyio, "getaddrinfo", resolver)
    await invite_someone(owner, clock)

    outcomes = await deliver_webhooks(clock)

    assert [o.status for o in outcomes] == [DeliveryStatus.SENT]
    (received,) = receiver.accepted()
    assert received.headers["host"] == f"hooks.example.test:{receiver.port}"


async def test_given_secret_key_changed_when_delivering_then_nothing_unsigned_is_sent_and_the_log_says_why(  # noqa: E501
    real_account: CreatedAccount,
    real_now_clock: FixedClock,
    receiver: WebhookReceiver,
    http_clients: None,
):
    clock = real_now_clock
    owner = owner_principal(real_account.account_id, real_account.owner_user_id)
    await create_webhook_endpoint(actor=owner, url=receiver.url, clock=clock)
    await invite_someone(owner, clock)
    config.configure_with(secret_key=b"another key of at least thirty-two bytes")

    outcomes = await deliver_webhooks(clock)

    assert [o.status for o in outcomes] == [DeliveryStatus.RETRY]
    assert receiver.received == []
    delivery = await only_delivery()
    assert delivery.last_error == "the secret cannot be read (SECRET_KEY changed?): rotate it"
