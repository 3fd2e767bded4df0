"""Resending and revoking invitations, and the expiry job."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from domain.enums import (
    ActorKind,
    AssignmentEndReason,
    AuditAction,
    EmailKind,
    InvitationKind,
    InvitationStatus,
    UserStatus,
)
from domain.errors import ErrorCode
from domain.models import (
    Invitation,
    LicenseAssignment,
    User,
)
from domain.security import invitation_token, token_hash
from domain.services.invitations import (
    accept_invitation,
    expire_invitations,
    resend_invitation,
    revoke_invitation,
)
from tests.domain.users_support import (
    PASSWORD,
    PAST_EXPIRY,
    actions_since,
    audit_since,
    enabled_user,
    fill_account,
    invite,
    mail_since,
    mark,
    other_account_user,
    seats,
    token_of,
)
from tests.support.assertions import refused_unchanged as refused
from tests.support.snapshot import database_snapshot

pytestmark = pytest.mark.anyio


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
