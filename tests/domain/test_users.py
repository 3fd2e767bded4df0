"""Users and licences: invite, accept, resend, revoke, expire, assign, unassign, edit.

Every refusal is shown to leave the whole database exactly as it was, and
every successful call to write exactly one audit event of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import pytest

from domain.clock import FixedClock
from domain.enums import (
    ActorKind,
    AssignmentEndReason,
    AuditAction,
    EmailKind,
    InvitationKind,
    InvitationStatus,
    Role,
    UserStatus,
)
from domain.errors import DomainError, ErrorCode
from domain.models import (
    Account,
    AuditEvent,
    Invitation,
    LicenseAssignment,
    OutboxMessage,
    Session,
    User,
)
from domain.principal import Principal
from domain.security import invitation_token, token_hash, verify_password
from domain.services import users
from domain.services.accounts import CreatedAccount
from domain.services.users import (
    InvitationOutcome,
    accept_invitation,
    assign_license,
    expire_invitations,
    invite_user,
    resend_invitation,
    revoke_invitation,
    unassign_license,
    update_user,
)
from tests.domain.conftest import make_account
from tests.domain.snapshot import database_snapshot

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"
PAST_EXPIRY = timedelta(days=7, seconds=1)


# --------------------------------------------------------------------------- helpers


async def invite(
    actor: Principal, clock: FixedClock, email: str = "ann@example.com", **kwargs: Any
) -> InvitationOutcome:
    return await invite_user(
        actor=actor, email=email, first_name="Ann", last_name="Lee", clock=clock, **kwargs
    )


def token_of(invitation: Invitation) -> str:
    return invitation_token(invitation.id, invitation.token_version)


async def fresh_invitation(user_id: int) -> Invitation:
    invitation = await Invitation.filter(user_id=user_id).order_by("-id").first()
    assert invitation is not None
    return invitation


async def enabled_user(
    owner: Principal, clock: FixedClock, email: str = "mia@example.com", role: Role = Role.MEMBER
) -> tuple[User, Principal]:
    """A user who accepted its invitation, and the principal it acts as."""
    outcome = await invite(owner, clock, email, role=role)
    grant = await accept_invitation(
        token=token_of(outcome.invitation), password=PASSWORD, clock=clock
    )
    principal = Principal(
        account_id=owner.account_id, kind=ActorKind.USER, role=role, user_id=grant.user.id
    )
    return grant.user, principal


def member_of(account: CreatedAccount, user_id: int, role: Role = Role.MEMBER) -> Principal:
    return Principal(account_id=account.account_id, kind=ActorKind.USER, role=role, user_id=user_id)


async def refused(
    call: Awaitable[Any], code: ErrorCode, *, field: str | None = None
) -> DomainError:
    """Await a call that must be refused with `code` and change nothing at all."""
    before = await database_snapshot()
    with pytest.raises(DomainError) as caught:
        await call
    assert caught.value.code == code, caught.value
    if field is not None:
        assert caught.value.field == field
    assert await database_snapshot() == before
    return caught.value


async def mark() -> tuple[int, int]:
    last_event = await AuditEvent.all().order_by("-id").first()
    last_mail = await OutboxMessage.all().order_by("-id").first()
    return (last_event.id if last_event else 0, last_mail.id if last_mail else 0)


async def audit_since(since: tuple[int, int]) -> list[AuditEvent]:
    return await AuditEvent.filter(id__gt=since[0]).order_by("id")


async def actions_since(since: tuple[int, int]) -> list[AuditAction]:
    return [event.action for event in await audit_since(since)]


async def mail_since(since: tuple[int, int]) -> list[tuple[EmailKind, dict[str, Any]]]:
    return [
        (message.kind, message.payload)
        for message in await OutboxMessage.filter(id__gt=since[1]).order_by("id")
    ]


async def seats(account: CreatedAccount) -> tuple[int, int]:
    row = await Account.get(id=account.account_id)
    return row.seats_in_use, row.seats_total


async def open_assignment_of(user_id: int) -> LicenseAssignment | None:
    return await LicenseAssignment.filter(user_id=user_id, unassigned_at__isnull=True).first()


async def fill_account(owner: Principal, clock: FixedClock, count: int) -> list[InvitationOutcome]:
    return [await invite(owner, clock, f"filler{i}@example.com") for i in range(count)]


async def other_account_user(clock: FixedClock) -> tuple[CreatedAccount, User]:
    other = await make_account(clock, email="boss@other.example", name="Other")
    other_owner = member_of(other, other.owner_user_id, Role.OWNER)
    outcome = await invite(other_owner, clock, "stranger@other.example")
    return other, outcome.user


# --------------------------------------------------------------------------- invite


async def test_invite_user_given_a_free_licence_then_invited_with_invitation_audit_and_email(
    account, owner, clock
):
    since = await mark()

    outcome = await invite_user(
        actor=owner,
        email="  Ann.Lee@Example.COM ",
        first_name=" Ann ",
        last_name="Lee",
        role=Role.ADMIN,
        qualification=" PMP ",
        clock=clock,
    )

    user = await User.get(id=outcome.user.id)
    assert (user.email, user.email_key) == ("Ann.Lee@example.com", "ann.lee@example.com")
    assert (user.first_name, user.last_name, user.sort_name) == ("Ann", "Lee", "ann lee")
    assert (user.role, user.status, user.qualification) == (Role.ADMIN, UserStatus.INVITED, "PMP")
    assert user.password_hash is None
    assert await seats(account) == (2, 5)
    assignment = await open_assignment_of(user.id)
    assert assignment is not None
    assert (assignment.assigned_by_kind, assignment.assigned_by_user_id) == (
        ActorKind.USER,
        owner.user_id,
    )
    invitation = await Invitation.get(id=outcome.invitation.id)
    assert invitation.user_id == user.id
    assert (invitation.kind, invitation.status) == (
        InvitationKind.LICENSE,
        InvitationStatus.PENDING,
    )
    assert invitation.expires_at == clock.now() + timedelta(days=7)
    assert invitation.created_at == clock.now()
    assert invitation.invited_by_user_id == owner.user_id
    assert invitation.email == "Ann.Lee@example.com"
    assert invitation.token_hash == token_hash(invitation_token(invitation.id, 1))
    events = await audit_since(since)
    assert [e.action for e in events] == [AuditAction.USER_INVITED]
    assert (events[0].actor_user_id, events[0].target_user_id) == (owner.user_id, user.id)
    assert events[0].data["invitationId"] == invitation.id
    assert await mail_since(since) == [
        (
            EmailKind.INVITATION,
            {"invitationId": invitation.id, "tokenVersion": invitation.token_version},
        )
    ]


async def test_invite_user_given_an_api_token_then_the_token_is_recorded_as_the_actor(
    account, api_token_actor, clock
):
    since = await mark()

    outcome = await invite(api_token_actor, clock)

    assignment = await open_assignment_of(outcome.user.id)
    assert assignment is not None
    assert (assignment.assigned_by_kind, assignment.assigned_by_token_id) == (
        ActorKind.API_TOKEN,
        api_token_actor.token_id,
    )
    assert outcome.invitation.invited_by_user_id is None
    events = await audit_since(since)
    assert [(e.action, e.actor_kind, e.actor_token_id) for e in events] == [
        (AuditAction.USER_INVITED, ActorKind.API_TOKEN, api_token_actor.token_id)
    ]


async def test_invite_user_given_a_member_then_forbidden_before_input_is_checked(
    account, owner, clock
):
    _, member = await enabled_user(owner, clock)

    await refused(invite(member, clock, "not an email"), ErrorCode.FORBIDDEN)


@pytest.mark.parametrize(
    ("email", "first_name", "last_name", "qualification", "field"),
    [
        ("not-an-email", "Ann", "Lee", None, "email"),
        ("", "Ann", "Lee", None, "email"),
        ("ann@example.com", "   ", "Lee", None, "firstName"),
        ("ann@example.com", "A\u202eB", "Lee", None, "firstName"),
        ("ann@example.com", "Ann", "x" * 101, None, "lastName"),
        ("ann@example.com", "Ann", "Lee", "q" * 201, "qualification"),
        ("ann@example.com", "Ann", "Lee", "line\nbreak", "qualification"),
    ],
)
async def test_invite_user_given_invalid_input_then_invalid_input_names_the_field(
    account, owner, clock, email, first_name, last_name, qualification, field
):
    await refused(
        invite_user(
            actor=owner,
            email=email,
            first_name=first_name,
            last_name=last_name,
            qualification=qualification,
            clock=clock,
        ),
        ErrorCode.INVALID_INPUT,
        field=field,
    )


async def test_invite_user_given_role_owner_then_owner_role_immutable(account, owner, clock):
    await refused(
        invite(owner, clock, role=Role.OWNER), ErrorCode.OWNER_ROLE_IMMUTABLE, field="role"
    )


async def test_invite_user_given_invalid_input_and_role_owner_then_input_is_reported_first(
    account, owner, clock
):
    await refused(
        invite(owner, clock, "nope", role=Role.OWNER), ErrorCode.INVALID_INPUT, field="email"
    )


async def test_invite_user_given_the_email_exists_in_any_case_then_email_taken(
    account, owner, clock
):
    await invite(owner, clock, "ann@example.com")

    await refused(invite(owner, clock, "ANN@Example.com"), ErrorCode.EMAIL_TAKEN, field="email")
    await refused(invite(owner, clock, "OWNER@example.com"), ErrorCode.EMAIL_TAKEN)


async def test_invite_user_given_a_disabled_user_with_the_email_then_email_taken(
    account, owner, clock
):
    outcome = await invite(owner, clock, "ann@example.com")
    await revoke_invitation(actor=owner, user_id=str(outcome.user.id), clock=clock)

    await refused(invite(owner, clock, "ann@example.com"), ErrorCode.EMAIL_TAKEN)


async def test_invite_user_given_the_same_email_in_another_account_then_it_is_allowed(
    account, owner, clock
):
    await other_account_user(clock)

    outcome = await invite(owner, clock, "stranger@other.example")

    assert outcome.user.account_id == account.account_id


async def test_invite_user_given_a_concurrent_insert_of_the_email_then_email_taken(
    account, owner, clock, monkeypatch
):
    await invite(owner, clock, "ann@example.com")

    async def not_seen(*_: Any, **__: Any) -> bool:
        return False  # as if the other invite had not committed yet at the check

    monkeypatch.setattr(users, "_email_in_use", not_seen)

    await refused(invite(owner, clock, "Ann@example.com"), ErrorCode.EMAIL_TAKEN, field="email")


async def test_invite_user_given_the_same_email_at_once_then_one_succeeds(account, owner, clock):
    results = await asyncio.gather(
        *(invite(owner, clock, "same@example.com") for _ in range(6)), return_exceptions=True
    )

    assert sum(isinstance(r, InvitationOutcome) for r in results) == 1
    assert (
        sorted(r.code for r in results if isinstance(r, DomainError)) == [ErrorCode.EMAIL_TAKEN] * 5
    )
    assert await seats(account) == (2, 5)


async def test_invite_user_given_no_free_licence_then_no_available_licenses(account, owner, clock):
    await fill_account(owner, clock, 4)

    await refused(invite(owner, clock, "late@example.com"), ErrorCode.NO_AVAILABLE_LICENSES)


async def test_invite_user_given_a_taken_email_and_no_licence_then_email_taken_comes_first(
    account, owner, clock
):
    await fill_account(owner, clock, 4)

    await refused(invite(owner, clock, "filler0@example.com"), ErrorCode.EMAIL_TAKEN)


async def test_invite_user_given_an_overdue_invitation_then_its_licence_is_released_first(
    account, owner, clock
):
    fillers = await fill_account(owner, clock, 4)
    await refused(invite(owner, clock, "late@example.com"), ErrorCode.NO_AVAILABLE_LICENSES)
    clock.advance(PAST_EXPIRY)
    since = await mark()

    outcome = await invite(owner, clock, "late@example.com")

    assert outcome.user.status == UserStatus.INVITED
    assert await seats(account) == (2, 5)
    assert await actions_since(since) == [AuditAction.INVITATION_EXPIRED] * 4 + [
        AuditAction.USER_INVITED
    ]
    for filler in fillers:
        invitation = await Invitation.get(id=filler.invitation.id)
        assert invitation.status == InvitationStatus.EXPIRED
        assert (await User.get(id=filler.user.id)).status == UserStatus.DISABLED


# --------------------------------------------------------------------------- accept


async def test_accept_invitation_given_a_pending_invitation_then_user_enabled_and_signed_in(
    account, owner, clock
):
    outcome = await invite(owner, clock)
    clock.advance(timedelta(hours=1))
    since = await mark()

    grant = await accept_invitation(
        token=token_of(outcome.invitation), password=PASSWORD, clock=clock
    )

    user = await User.get(id=outcome.user.id)
    assert user.status == UserStatus.ENABLED
    assert verify_password(user.password_hash, PASSWORD)
    invitation = await Invitation.get(id=outcome.invitation.id)
    assert (invitation.status, invitation.accepted_at) == (InvitationStatus.ACCEPTED, clock.now())
    assert grant.user.id == user.id
    assert grant.expires_at == clock.now() + timedelta(days=14)
    session = await Session.get(token_hash=token_hash(grant.token))
    assert (session.user_id, session.ended_at) == (user.id, None)
    events = await audit_since(since)
    assert [(e.action, e.actor_kind, e.actor_user_id, e.target_user_id) for e in events] == [
        (AuditAction.INVITATION_ACCEPTED, ActorKind.USER, user.id, user.id)
    ]
    assert await mail_since(since) == []
    assert await seats(account) == (2, 5)


@pytest.mark.parametrize("length", [10, 256])
async def test_accept_invitation_given_a_password_at_the_length_limits_then_accepted(
    account, owner, clock, length
):
    outcome = await invite(owner, clock)

    grant = await accept_invitation(
        token=token_of(outcome.invitation), password="p" * length, clock=clock
    )

    assert grant.user.status == UserStatus.ENABLED


@pytest.mark.parametrize("length", [0, 9, 257])
async def test_accept_invitation_given_a_weak_password_then_weak_password(
    account, owner, clock, length
):
    outcome = await invite(owner, clock)

    await refused(
        accept_invitation(token=token_of(outcome.invitation), password="p" * length, clock=clock),
        ErrorCode.WEAK_PASSWORD,
        field="password",
    )


async def test_accept_invitation_given_a_weak_password_and_a_bad_token_then_weak_password_first(
    account, clock
):
    await refused(
        accept_invitation(token="nonsense", password="short", clock=clock),
        ErrorCode.WEAK_PASSWORD,
    )


@pytest.mark.parametrize("token", ["nonsense", "", "x" * 5000])
async def test_accept_invitation_given_an_unknown_token_then_invitation_invalid(
    account, clock, token
):
    await refused(
        accept_invitation(token=token, password=PASSWORD, clock=clock),
        ErrorCode.INVITATION_INVALID,
    )


async def test_accept_invitation_given_a_used_token_then_invitation_invalid(account, owner, clock):
    outcome = await invite(owner, clock)
    token = token_of(outcome.invitation)
    await accept_invitation(token=token, password=PASSWORD, clock=clock)

    await refused(
        accept_invitation(token=token, password=PASSWORD, clock=clock),
        ErrorCode.INVITATION_INVALID,
    )


async def test_accept_invitation_given_a_revoked_token_then_invitation_invalid(
    account, owner, clock
):
    outcome = await invite(owner, clock)
    await revoke_invitation(actor=owner, user_id=str(outcome.user.id), clock=clock)

    await refused(
        accept_invitation(token=token_of(outcome.invitation), password=PASSWORD, clock=clock),
        ErrorCode.INVITATION_INVALID,
    )


async def test_accept_invitation_given_an_unassigned_user_then_its_old_token_is_invalid(
    account, owner, clock
):
    outcome = await invite(owner, clock)
    await unassign_license(actor=owner, user_id=str(outcome.user.id), clock=clock)

    await refused(
        accept_invitation(token=token_of(outcome.invitation), password=PASSWORD, clock=clock),
        ErrorCode.INVITATION_INVALID,
    )


async def test_accept_invitation_given_a_past_expiry_before_the_job_ran_then_expired_consistently(
    account, owner, clock
):
    outcome = await invite(owner, clock)
    token = token_of(outcome.invitation)
    clock.advance(PAST_EXPIRY)

    await refused(
        accept_invitation(token=token, password=PASSWORD, clock=clock),
        ErrorCode.INVITATION_EXPIRED,
    )
    await refused(
        revoke_invitation(actor=owner, user_id=str(outcome.user.id), clock=clock),
        ErrorCode.INVITATION_INVALID,
    )
    assert await expire_invitations(clock=clock) == 1
    await refused(
        accept_invitation(token=token, password=PASSWORD, clock=clock),
        ErrorCode.INVITATION_EXPIRED,
    )


async def test_accept_invitation_given_exactly_the_expiry_instant_then_expired(
    account, owner, clock
):
    outcome = await invite(owner, clock)
    clock.advance(timedelta(days=7))

    await refused(
        accept_invitation(token=token_of(outcome.invitation), password=PASSWORD, clock=clock),
        ErrorCode.INVITATION_EXPIRED,
    )


async def test_accept_invitation_given_the_owner_password_set_link_then_password_only(
    account, clock
):
    link = await Invitation.get(user_id=account.owner_user_id)
    before = await LicenseAssignment.all().order_by("id").values_list()
    since = await mark()

    grant = await accept_invitation(token=token_of(link), password=PASSWORD, clock=clock)

    owner_row = await User.get(id=account.owner_user_id)
    assert (owner_row.status, owner_row.role) == (UserStatus.ENABLED, Role.OWNER)
    assert verify_password(owner_row.password_hash, PASSWORD)
    assert grant.user.id == owner_row.id
    assert await Session.filter(user_id=owner_row.id).count() == 1
    assert (await Invitation.get(id=link.id)).status == InvitationStatus.ACCEPTED
    assert await seats(account) == (1, 5)
    assert await LicenseAssignment.all().order_by("id").values_list() == before
    assert await actions_since(since) == [AuditAction.INVITATION_ACCEPTED]


async def test_accept_invitation_given_an_expired_owner_link_then_expired_and_job_leaves_it(
    account, clock
):
    link = await Invitation.get(user_id=account.owner_user_id)
    clock.advance(PAST_EXPIRY)

    assert await expire_invitations(clock=clock) == 0
    assert (await Invitation.get(id=link.id)).status == InvitationStatus.PENDING
    await refused(
        accept_invitation(token=token_of(link), password=PASSWORD, clock=clock),
        ErrorCode.INVITATION_EXPIRED,
    )


# --------------------------------------------------------------------------- resend


async def test_resend_invitation_given_a_pending_invitation_then_token_and_expiry_rotate(
    account, owner, clock
):
    outcome = await invite(owner, clock)
    old_token = token_of(outcome.invitation)
    created = outcome.invitation.created_at
    clock.advance(timedelta(days=2))
    since = await mark()

    resent = await resend_invitation(actor=owner, user_id=str(outcome.user.id), clock=clock)

    invitation = await Invitation.get(id=outcome.invitation.id)
    assert resent.invitation.id == outcome.invitation.id
    assert invitation.token_version == 2
    assert invitation.token_hash == token_hash(invitation_token(invitation.id, 2))
    assert invitation.expires_at == clock.now() + timedelta(days=7)
    assert (invitation.created_at, invitation.status) == (created, InvitationStatus.PENDING)
    assert await Invitation.filter(user_id=outcome.user.id).count() == 1
    assert await seats(account) == (2, 5)
    assert await actions_since(since) == [AuditAction.INVITATION_RESENT]
    assert await mail_since(since) == [
        (EmailKind.INVITATION_RESENT, {"invitationId": invitation.id, "tokenVersion": 2})
    ]
    await refused(
        accept_invitation(token=old_token, password=PASSWORD, clock=clock),
        ErrorCode.INVITATION_INVALID,
    )
    grant = await accept_invitation(token=token_of(invitation), password=PASSWORD, clock=clock)
    assert grant.user.status == UserStatus.ENABLED


async def test_resend_invitation_twice_then_only_the_latest_token_works(account, owner, clock):
    outcome = await invite(owner, clock)
    user_id = str(outcome.user.id)
    await resend_invitation(actor=owner, user_id=user_id, clock=clock)
    second = await resend_invitation(actor=owner, user_id=user_id, clock=clock)

    assert second.invitation.token_version == 3
    for version in (1, 2):
        await refused(
            accept_invitation(
                token=invitation_token(second.invitation.id, version),
                password=PASSWORD,
                clock=clock,
            ),
            ErrorCode.INVITATION_INVALID,
        )
    await accept_invitation(token=token_of(second.invitation), password=PASSWORD, clock=clock)


async def test_resend_invitation_given_an_expired_invitation_then_a_licence_is_taken_again(
    account, owner, clock
):
    outcome = await invite(owner, clock)
    clock.advance(PAST_EXPIRY)
    await expire_invitations(clock=clock)
    assert await seats(account) == (1, 5)
    since = await mark()

    resent = await resend_invitation(actor=owner, user_id=str(outcome.user.id), clock=clock)

    assert resent.user.status == UserStatus.INVITED
    assert resent.invitation.status == InvitationStatus.PENDING
    assert resent.invitation.expires_at == clock.now() + timedelta(days=7)
    assert await seats(account) == (2, 5)
    assignments = await LicenseAssignment.filter(user_id=outcome.user.id).order_by("id")
    assert [a.end_reason for a in assignments] == [AssignmentEndReason.INVITATION_EXPIRED, None]
    assert await actions_since(since) == [AuditAction.INVITATION_RESENT]
    assert await mail_since(since) == [
        (
            EmailKind.INVITATION_RESENT,
            {
                "invitationId": outcome.invitation.id,
                "tokenVersion": resent.invitation.token_version,
            },
        )
    ]
    grant = await accept_invitation(
        token=token_of(resent.invitation), password=PASSWORD, clock=clock
    )
    assert grant.user.status == UserStatus.ENABLED


async def test_resend_invitation_given_a_pending_one_past_expiry_then_it_is_expired_and_retaken(
    account, owner, clock
):
    outcome = await invite(owner, clock)
    clock.advance(PAST_EXPIRY)
    since = await mark()

    resent = await resend_invitation(actor=owner, user_id=str(outcome.user.id), clock=clock)

    assert (resent.user.status, resent.invitation.status) == (
        UserStatus.INVITED,
        InvitationStatus.PENDING,
    )
    assert await seats(account) == (2, 5)
    assert await actions_since(since) == [
        AuditAction.INVITATION_EXPIRED,
        AuditAction.INVITATION_RESENT,
    ]
    assignments = await LicenseAssignment.filter(user_id=outcome.user.id).order_by("id")
    assert [a.end_reason for a in assignments] == [AssignmentEndReason.INVITATION_EXPIRED, None]


async def test_resend_invitation_given_an_expired_invitation_and_no_free_licence_then_refused(
    account, owner, clock
):
    outcome = await invite(owner, clock)
    clock.advance(PAST_EXPIRY)
    await expire_invitations(clock=clock)
    await fill_account(owner, clock, 4)

    await refused(
        resend_invitation(actor=owner, user_id=str(outcome.user.id), clock=clock),
        ErrorCode.NO_AVAILABLE_LICENSES,
    )


async def test_resend_invitation_given_an_accepted_or_revoked_invitation_then_invalid(
    account, owner, clock
):
    accepted, _ = await enabled_user(owner, clock, "acc@example.com")
    revoked = await invite(owner, clock, "rev@example.com")
    await revoke_invitation(actor=owner, user_id=str(revoked.user.id), clock=clock)

    for user_id in (accepted.id, revoked.user.id):
        await refused(
            resend_invitation(actor=owner, user_id=str(user_id), clock=clock),
            ErrorCode.INVITATION_INVALID,
        )


async def test_resend_invitation_given_a_member_then_forbidden(account, owner, clock):
    outcome = await invite(owner, clock)
    _, member = await enabled_user(owner, clock, "mia@example.com")

    await refused(
        resend_invitation(actor=member, user_id=str(outcome.user.id), clock=clock),
        ErrorCode.FORBIDDEN,
    )


@pytest.mark.parametrize("user_id", ["999999", "abc", "-1", ""])
async def test_resend_invitation_given_an_unknown_id_then_not_found(account, owner, clock, user_id):
    await refused(resend_invitation(actor=owner, user_id=user_id, clock=clock), ErrorCode.NOT_FOUND)


async def test_resend_invitation_given_another_accounts_user_then_not_found(account, owner, clock):
    _, stranger = await other_account_user(clock)

    await refused(
        resend_invitation(actor=owner, user_id=str(stranger.id), clock=clock), ErrorCode.NOT_FOUND
    )


async def test_resend_invitation_given_the_owner_link_then_a_new_link_and_no_licence_change(
    account, owner, clock
):
    link = await Invitation.get(user_id=account.owner_user_id)
    clock.advance(PAST_EXPIRY)
    since = await mark()

    resent = await resend_invitation(actor=owner, user_id=str(account.owner_user_id), clock=clock)

    assert resent.invitation.id == link.id
    assert resent.invitation.kind == InvitationKind.PASSWORD_SET
    assert resent.invitation.expires_at == clock.now() + timedelta(days=7)
    assert resent.user.status == UserStatus.ENABLED
    assert await seats(account) == (1, 5)
    assert await LicenseAssignment.filter(user_id=account.owner_user_id).count() == 1
    assert await actions_since(since) == [AuditAction.INVITATION_RESENT]
    assert await mail_since(since) == [
        (
            EmailKind.OWNER_PASSWORD_SET,
            {"invitationId": link.id, "tokenVersion": link.token_version + 1},
        )
    ]
    await refused(
        accept_invitation(token=token_of(link), password=PASSWORD, clock=clock),
        ErrorCode.INVITATION_INVALID,
    )
    await accept_invitation(token=token_of(resent.invitation), password=PASSWORD, clock=clock)
    await refused(
        resend_invitation(actor=owner, user_id=str(account.owner_user_id), clock=clock),
        ErrorCode.INVITATION_INVALID,
    )


# --------------------------------------------------------------------------- revoke


async def test_revoke_invitation_given_a_pending_invitation_then_licence_released_and_user_disabled(
    account, owner, clock
):
    outcome = await invite(owner, clock)
    clock.advance(timedelta(hours=3))
    since = await mark()

    revoked = await revoke_invitation(actor=owner, user_id=str(outcome.user.id), clock=clock)

    invitation = await Invitation.get(id=outcome.invitation.id)
    assert (invitation.status, invitation.revoked_at) == (InvitationStatus.REVOKED, clock.now())
    assert revoked.invitation.status == InvitationStatus.REVOKED
    assert (await User.get(id=outcome.user.id)).status == UserStatus.DISABLED
    assert revoked.user.status == UserStatus.DISABLED
    assert await seats(account) == (1, 5)
    assignment = await LicenseAssignment.get(user_id=outcome.user.id)
    assert (assignment.unassigned_at, assignment.end_reason, assignment.unassigned_by_user_id) == (
        clock.now(),
        AssignmentEndReason.INVITATION_REVOKED,
        owner.user_id,
    )
    assert await actions_since(since) == [AuditAction.INVITATION_REVOKED]
    assert await mail_since(since) == []


async def test_revoke_invitation_given_the_owner_then_owner_license_required(account, owner, clock):
    await refused(
        revoke_invitation(actor=owner, user_id=str(account.owner_user_id), clock=clock),
        ErrorCode.OWNER_LICENSE_REQUIRED,
    )


async def test_revoke_invitation_given_no_pending_invitation_then_invitation_invalid(
    account, owner, clock
):
    accepted, _ = await enabled_user(owner, clock, "acc@example.com")
    revoked = await invite(owner, clock, "rev@example.com")
    await revoke_invitation(actor=owner, user_id=str(revoked.user.id), clock=clock)
    expired = await invite(owner, clock, "exp@example.com")
    clock.advance(PAST_EXPIRY)
    overdue = await invite(owner, clock, "due@example.com")  # expires "exp" first
    clock.advance(PAST_EXPIRY)  # "due" is now overdue, still PENDING in the database

    assert (await Invitation.get(id=overdue.invitation.id)).status == InvitationStatus.PENDING
    for user_id in (accepted.id, revoked.user.id, expired.user.id, overdue.user.id):
        await refused(
            revoke_invitation(actor=owner, user_id=str(user_id), clock=clock),
            ErrorCode.INVITATION_INVALID,
        )


async def test_revoke_invitation_given_a_member_then_forbidden(account, owner, clock):
    outcome = await invite(owner, clock)
    _, member = await enabled_user(owner, clock, "mia@example.com")

    await refused(
        revoke_invitation(actor=member, user_id=str(outcome.user.id), clock=clock),
        ErrorCode.FORBIDDEN,
    )


async def test_revoke_invitation_given_another_accounts_user_then_not_found(account, owner, clock):
    _, stranger = await other_account_user(clock)

    await refused(
        revoke_invitation(actor=owner, user_id=str(stranger.id), clock=clock), ErrorCode.NOT_FOUND
    )
    await refused(revoke_invitation(actor=owner, user_id="12x", clock=clock), ErrorCode.NOT_FOUND)


# --------------------------------------------------------------------------- expiry job


async def test_expire_invitations_given_overdue_invitations_then_released_and_audited_once(
    account, owner, clock
):
    first = await invite(owner, clock, "a@example.com")
    second = await invite(owner, clock, "b@example.com")
    clock.advance(timedelta(days=1))
    young = await invite(owner, clock, "c@example.com")
    clock.advance(timedelta(days=6, seconds=1))
    since = await mark()

    assert await expire_invitations(clock=clock) == 2

    for outcome in (first, second):
        assert (await Invitation.get(id=outcome.invitation.id)).status == InvitationStatus.EXPIRED
        assert (await User.get(id=outcome.user.id)).status == UserStatus.DISABLED
        assignment = await LicenseAssignment.get(user_id=outcome.user.id)
        assert (assignment.end_reason, assignment.unassigned_by_kind) == (
            AssignmentEndReason.INVITATION_EXPIRED,
            ActorKind.SYSTEM,
        )
    assert (await Invitation.get(id=young.invitation.id)).status == InvitationStatus.PENDING
    assert await seats(account) == (2, 5)
    events = await audit_since(since)
    assert sorted((e.action, e.actor_kind, e.target_user_id) for e in events) == sorted(
        [
            (AuditAction.INVITATION_EXPIRED, ActorKind.SYSTEM, first.user.id),
            (AuditAction.INVITATION_EXPIRED, ActorKind.SYSTEM, second.user.id),
        ]
    )
    assert await mail_since(since) == []

    snapshot = await database_snapshot()
    assert await expire_invitations(clock=clock) == 0
    assert await database_snapshot() == snapshot


async def test_expire_invitations_given_nothing_overdue_then_nothing_changes(account, owner, clock):
    await invite(owner, clock)
    clock.advance(timedelta(days=6))
    snapshot = await database_snapshot()

    assert await expire_invitations(clock=clock) == 0
    assert await database_snapshot() == snapshot


async def test_expire_invitations_given_one_account_then_only_that_account_is_touched(
    account, owner, clock
):
    ours = await invite(owner, clock)
    other, stranger = await other_account_user(clock)
    clock.advance(PAST_EXPIRY)

    assert await expire_invitations(clock=clock, account_id=other.account_id) == 1

    assert (await User.get(id=stranger.id)).status == UserStatus.DISABLED
    assert (await User.get(id=ours.user.id)).status == UserStatus.INVITED
    assert await expire_invitations(clock=clock) == 1
    assert (await User.get(id=ours.user.id)).status == UserStatus.DISABLED


async def test_expire_invitations_given_two_jobs_at_once_then_each_invitation_expires_once(
    account, owner, clock
):
    await fill_account(owner, clock, 4)
    clock.advance(PAST_EXPIRY)
    since = await mark()

    results = await asyncio.gather(*(expire_invitations(clock=clock) for _ in range(3)))

    assert sum(results) == 4
    assert await actions_since(since) == [AuditAction.INVITATION_EXPIRED] * 4
    assert await seats(account) == (1, 5)


# --------------------------------------------------------------------------- assign


async def test_assign_license_given_a_disabled_user_with_a_password_then_enabled_at_once(
    account, owner, clock
):
    user, _ = await enabled_user(owner, clock)
    await unassign_license(actor=owner, user_id=str(user.id), clock=clock)
    invitations_before = await Invitation.filter(user_id=user.id).count()
    since = await mark()

    assigned = await assign_license(actor=owner, user_id=str(user.id), clock=clock)

    assert assigned.status == UserStatus.ENABLED
    assert (await User.get(id=user.id)).status == UserStatus.ENABLED
    assert await seats(account) == (2, 5)
    assignment = await open_assignment_of(user.id)
    assert assignment is not None and assignment.assigned_at == clock.now()
    assert await Invitation.filter(user_id=user.id).count() == invitations_before
    assert await actions_since(since) == [AuditAction.LICENSE_ASSIGNED]
    assert await mail_since(since) == []


async def test_assign_license_given_a_user_who_never_accepted_then_invited_with_a_new_invitation(
    account, owner, clock
):
    outcome = await invite(owner, clock)
    await revoke_invitation(actor=owner, user_id=str(outcome.user.id), clock=clock)
    clock.advance(timedelta(days=1))
    since = await mark()

    assigned = await assign_license(actor=owner, user_id=str(outcome.user.id), clock=clock)

    assert assigned.status == UserStatus.INVITED
    assert await seats(account) == (2, 5)
    new = await fresh_invitation(outcome.user.id)
    assert new.id != outcome.invitation.id
    assert (new.kind, new.status, new.token_version) == (
        InvitationKind.LICENSE,
        InvitationStatus.PENDING,
        1,
    )
    assert (new.created_at, new.expires_at) == (clock.now(), clock.now() + timedelta(days=7))
    assert (await Invitation.get(id=outcome.invitation.id)).status == InvitationStatus.REVOKED
    assert await actions_since(since) == [AuditAction.LICENSE_ASSIGNED]
    assert await mail_since(since) == [
        (EmailKind.INVITATION, {"invitationId": new.id, "tokenVersion": new.token_version})
    ]
    await refused(
        accept_invitation(token=token_of(outcome.invitation), password=PASSWORD, clock=clock),
        ErrorCode.INVITATION_INVALID,
    )
    grant = await accept_invitation(token=token_of(new), password=PASSWORD, clock=clock)
    assert grant.user.status == UserStatus.ENABLED


async def test_assign_license_given_an_overdue_invitation_then_its_licence_frees_the_seat(
    account, owner, clock
):
    disabled = await invite(owner, clock, "dis@example.com")
    await revoke_invitation(actor=owner, user_id=str(disabled.user.id), clock=clock)
    await fill_account(owner, clock, 4)
    await refused(
        assign_license(actor=owner, user_id=str(disabled.user.id), clock=clock),
        ErrorCode.NO_AVAILABLE_LICENSES,
    )
    clock.advance(PAST_EXPIRY)
    since = await mark()

    assigned = await assign_license(actor=owner, user_id=str(disabled.user.id), clock=clock)

    assert assigned.status == UserStatus.INVITED
    assert await seats(account) == (2, 5)
    assert await actions_since(since) == [AuditAction.INVITATION_EXPIRED] * 4 + [
        AuditAction.LICENSE_ASSIGNED
    ]


async def test_assign_license_given_a_licensed_user_then_already_licensed(account, owner, clock):
    invited = await invite(owner, clock, "inv@example.com")
    enabled, _ = await enabled_user(owner, clock, "en@example.com")

    for user_id in (invited.user.id, enabled.id, account.owner_user_id):
        await refused(
            assign_license(actor=owner, user_id=str(user_id), clock=clock),
            ErrorCode.ALREADY_LICENSED,
        )


async def test_assign_license_given_a_licensed_user_and_no_free_licence_then_already_licensed(
    account, owner, clock
):
    fillers = await fill_account(owner, clock, 4)

    await refused(
        assign_license(actor=owner, user_id=str(fillers[0].user.id), clock=clock),
        ErrorCode.ALREADY_LICENSED,
    )


async def test_assign_license_given_no_free_licence_then_no_available_licenses(
    account, owner, clock
):
    outcome = await invite(owner, clock, "dis@example.com")
    await revoke_invitation(actor=owner, user_id=str(outcome.user.id), clock=clock)
    await fill_account(owner, clock, 4)

    await refused(
        assign_license(actor=owner, user_id=str(outcome.user.id), clock=clock),
        ErrorCode.NO_AVAILABLE_LICENSES,
    )


async def test_assign_license_given_a_member_then_forbidden_even_for_unknown_ids(
    account, owner, clock
):
    outcome = await invite(owner, clock, "dis@example.com")
    await revoke_invitation(actor=owner, user_id=str(outcome.user.id), clock=clock)
    _, member = await enabled_user(owner, clock)

    for user_id in (str(outcome.user.id), "999999"):
        await refused(
            assign_license(actor=member, user_id=user_id, clock=clock), ErrorCode.FORBIDDEN
        )


async def test_assign_license_given_another_accounts_user_then_not_found(account, owner, clock):
    other, stranger = await other_account_user(clock)
    other_owner = member_of(other, other.owner_user_id, Role.OWNER)
    await revoke_invitation(actor=other_owner, user_id=str(stranger.id), clock=clock)

    await refused(
        assign_license(actor=owner, user_id=str(stranger.id), clock=clock), ErrorCode.NOT_FOUND
    )


async def test_assign_license_given_concurrent_assigns_of_one_user_then_one_licence_is_taken(
    account, owner, clock
):
    user, _ = await enabled_user(owner, clock)
    await unassign_license(actor=owner, user_id=str(user.id), clock=clock)
    since = await mark()

    results = await asyncio.gather(
        *(assign_license(actor=owner, user_id=str(user.id), clock=clock) for _ in range(5)),
        return_exceptions=True,
    )

    assert sum(isinstance(r, User) for r in results) == 1
    assert [r.code for r in results if isinstance(r, DomainError)] == [
        ErrorCode.ALREADY_LICENSED
    ] * 4
    assert await seats(account) == (2, 5)
    assert await actions_since(since) == [AuditAction.LICENSE_ASSIGNED]


# --------------------------------------------------------------------------- unassign


async def test_unassign_license_given_an_enabled_user_then_disabled_signed_out_and_emailed(
    account, owner, clock
):
    user, _ = await enabled_user(owner, clock)
    clock.advance(timedelta(hours=1))
    since = await mark()

    unassigned = await unassign_license(actor=owner, user_id=str(user.id), clock=clock)

    assert unassigned.status == UserStatus.DISABLED
    assert (await User.get(id=user.id)).status == UserStatus.DISABLED
    assert await seats(account) == (1, 5)
    assert await Session.filter(user_id=user.id, ended_at__isnull=True).count() == 0
    assert await Session.filter(user_id=user.id, ended_at=clock.now()).count() == 1
    assignment = await LicenseAssignment.get(user_id=user.id)
    assert (assignment.end_reason, assignment.unassigned_by_user_id) == (
        AssignmentEndReason.UNASSIGNED,
        owner.user_id,
    )
    assert await actions_since(since) == [AuditAction.LICENSE_UNASSIGNED]
    assert await mail_since(since) == [(EmailKind.LICENSE_REMOVED, {"userId": user.id})]


async def test_unassign_license_given_an_invited_user_then_its_pending_invitation_is_revoked(
    account, api_token_actor, clock
):
    outcome = await invite(api_token_actor, clock)
    since = await mark()

    await unassign_license(actor=api_token_actor, user_id=str(outcome.user.id), clock=clock)

    invitation = await Invitation.get(id=outcome.invitation.id)
    assert (invitation.status, invitation.revoked_at) == (InvitationStatus.REVOKED, clock.now())
    assignment = await LicenseAssignment.get(user_id=outcome.user.id)
    assert (assignment.end_reason, assignment.unassigned_by_kind) == (
        AssignmentEndReason.UNASSIGNED,
        ActorKind.API_TOKEN,
    )
    assert await seats(account) == (1, 5)
    assert await actions_since(since) == [AuditAction.LICENSE_UNASSIGNED]


async def test_unassign_license_given_the_owner_then_owner_license_required(account, owner, clock):
    await refused(
        unassign_license(actor=owner, user_id=str(account.owner_user_id), clock=clock),
        ErrorCode.OWNER_LICENSE_REQUIRED,
    )


async def test_unassign_license_given_a_disabled_user_then_not_licensed(account, owner, clock):
    outcome = await invite(owner, clock)
    await revoke_invitation(actor=owner, user_id=str(outcome.user.id), clock=clock)

    await refused(
        unassign_license(actor=owner, user_id=str(outcome.user.id), clock=clock),
        ErrorCode.NOT_LICENSED,
    )


async def test_unassign_license_given_a_member_then_forbidden(account, owner, clock):
    outcome = await invite(owner, clock)
    _, member = await enabled_user(owner, clock)

    await refused(
        unassign_license(actor=member, user_id=str(outcome.user.id), clock=clock),
        ErrorCode.FORBIDDEN,
    )


async def test_unassign_license_given_another_accounts_user_then_not_found(account, owner, clock):
    _, stranger = await other_account_user(clock)

    await refused(
        unassign_license(actor=owner, user_id=str(stranger.id), clock=clock), ErrorCode.NOT_FOUND
    )


# --------------------------------------------------------------------------- update


async def test_update_user_given_an_admin_then_names_qualification_and_role_change_with_audit(
    account, owner, clock
):
    outcome = await invite(owner, clock, qualification="PMP")
    since = await mark()

    updated = await update_user(
        actor=owner,
        user_id=str(outcome.user.id),
        first_name=" Zoe ",
        last_name="Lee",  # unchanged: not in the audit
        role=Role.ADMIN,
        qualification="CISSP",
        clock=clock,
    )

    row = await User.get(id=outcome.user.id)
    assert (row.first_name, row.last_name, row.sort_name) == ("Zoe", "Lee", "zoe lee")
    assert (row.role, row.qualification) == (Role.ADMIN, "CISSP")
    assert (updated.first_name, updated.role) == ("Zoe", Role.ADMIN)
    events = await audit_since(since)
    assert [e.action for e in events] == [AuditAction.USER_UPDATED]
    assert events[0].data == {
        "before": {"firstName": "Ann", "role": "MEMBER", "qualification": "PMP"},
        "after": {"firstName": "Zoe", "role": "ADMIN", "qualification": "CISSP"},
    }
    assert await mail_since(since) == []


async def test_update_user_given_an_empty_qualification_then_it_is_cleared(account, owner, clock):
    outcome = await invite(owner, clock, qualification="PMP")
    since = await mark()

    updated = await update_user(
        actor=owner, user_id=str(outcome.user.id), qualification="", clock=clock
    )

    assert updated.qualification is None
    assert (await User.get(id=outcome.user.id)).qualification is None
    events = await audit_since(since)
    assert [e.data for e in events] == [
        {"before": {"qualification": "PMP"}, "after": {"qualification": None}}
    ]


async def test_update_user_given_no_change_then_no_write_and_no_audit(account, owner, clock):
    outcome = await invite(owner, clock, qualification="PMP")
    snapshot = await database_snapshot()

    for changes in (
        {},
        {"first_name": "Ann", "last_name": " Lee ", "role": Role.MEMBER, "qualification": "PMP"},
    ):
        user = await update_user(actor=owner, user_id=str(outcome.user.id), clock=clock, **changes)
        assert user.first_name == "Ann"
    assert await database_snapshot() == snapshot


async def test_update_user_given_the_owner_then_admin_may_change_its_names(account, owner, clock):
    _, admin = await enabled_user(owner, clock, "adm@example.com", role=Role.ADMIN)

    updated = await update_user(
        actor=admin, user_id=str(account.owner_user_id), last_name="Smith", clock=clock
    )

    assert (updated.last_name, updated.sort_name, updated.role) == (
        "Smith",
        "olive smith",
        Role.OWNER,
    )


async def test_update_user_given_a_member_then_it_may_change_its_own_names(account, owner, clock):
    user, member = await enabled_user(owner, clock)
    since = await mark()

    updated = await update_user(
        actor=member, user_id=str(user.id), first_name="Mia", last_name="Wong", clock=clock
    )

    assert (updated.first_name, updated.last_name, updated.sort_name) == ("Mia", "Wong", "mia wong")
    events = await audit_since(since)
    assert [(e.action, e.actor_user_id) for e in events] == [(AuditAction.USER_UPDATED, user.id)]
    assert events[0].data == {
        "before": {"firstName": "Ann", "lastName": "Lee"},
        "after": {"firstName": "Mia", "lastName": "Wong"},
    }


async def test_update_user_given_a_member_changing_anything_else_then_forbidden(
    account, owner, clock
):
    user, member = await enabled_user(owner, clock)
    other = await invite(owner, clock, "other@example.com")

    for user_id, changes in (
        (other.user.id, {"first_name": "X"}),
        (account.owner_user_id, {"last_name": "X"}),
        (user.id, {"role": Role.ADMIN}),
        (user.id, {"role": Role.MEMBER}),
        (user.id, {"qualification": "PMP"}),
        (user.id, {"first_name": "", "qualification": "PMP"}),
    ):
        await refused(
            update_user(actor=member, user_id=str(user_id), clock=clock, **changes),
            ErrorCode.FORBIDDEN,
        )


async def test_update_user_given_another_accounts_user_then_not_found_even_for_a_member(
    account, owner, clock
):
    _, stranger = await other_account_user(clock)
    _, member = await enabled_user(owner, clock)

    for actor in (owner, member):
        await refused(
            update_user(actor=actor, user_id=str(stranger.id), first_name="X", clock=clock),
            ErrorCode.NOT_FOUND,
        )
    await refused(
        update_user(actor=owner, user_id="nope", first_name="X", clock=clock), ErrorCode.NOT_FOUND
    )


async def test_update_user_given_role_owner_or_the_owners_role_then_owner_role_immutable(
    account, owner, clock
):
    outcome = await invite(owner, clock)

    await refused(
        update_user(actor=owner, user_id=str(outcome.user.id), role=Role.OWNER, clock=clock),
        ErrorCode.OWNER_ROLE_IMMUTABLE,
        field="role",
    )
    for role in (Role.ADMIN, Role.MEMBER, Role.OWNER):
        await refused(
            update_user(actor=owner, user_id=str(account.owner_user_id), role=role, clock=clock),
            ErrorCode.OWNER_ROLE_IMMUTABLE,
            field="role",
        )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"first_name": "  "}, "firstName"),
        ({"last_name": "x" * 101}, "lastName"),
        ({"last_name": "a\tb"}, "lastName"),
        ({"qualification": "q" * 201}, "qualification"),
        ({"qualification": "q" * 201, "role": Role.OWNER}, "qualification"),
    ],
)
async def test_update_user_given_invalid_input_then_invalid_input_names_the_field(
    account, owner, clock, changes, field
):
    outcome = await invite(owner, clock)

    await refused(
        update_user(actor=owner, user_id=str(outcome.user.id), clock=clock, **changes),
        ErrorCode.INVALID_INPUT,
        field=field,
    )


# --------------------------------------------------------------------------- lifecycle


async def test_full_lifecycle_given_each_state_change_then_exactly_one_audit_event_per_call(
    account, owner, clock
):
    async def one_event(call: Awaitable[Any], action: AuditAction) -> Any:
        since = await mark()
        result = await call
        assert await actions_since(since) == [action]
        return result

    outcome = await one_event(invite(owner, clock), AuditAction.USER_INVITED)
    user_id = str(outcome.user.id)
    await one_event(
        resend_invitation(actor=owner, user_id=user_id, clock=clock),
        AuditAction.INVITATION_RESENT,
    )
    await one_event(
        accept_invitation(
            token=token_of(await fresh_invitation(outcome.user.id)),
            password=PASSWORD,
            clock=clock,
        ),
        AuditAction.INVITATION_ACCEPTED,
    )
    await one_event(
        update_user(actor=owner, user_id=user_id, first_name="Zed", clock=clock),
        AuditAction.USER_UPDATED,
    )
    await one_event(
        unassign_license(actor=owner, user_id=user_id, clock=clock),
        AuditAction.LICENSE_UNASSIGNED,
    )
    await one_event(
        assign_license(actor=owner, user_id=user_id, clock=clock), AuditAction.LICENSE_ASSIGNED
    )
    assert await seats(account) == (2, 5)
