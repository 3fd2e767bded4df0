"""Assigning and unassigning licences, and a user's whole lifecycle with one
audit event per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import pytest

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
    Invitation,
    LicenseAssignment,
    Session,
    User,
)
from domain.services.invitations import (
    accept_invitation,
    resend_invitation,
    revoke_invitation,
)
from domain.services.licensing import assign_license, unassign_license
from domain.services.profile import update_user
from tests.domain.users_support import (
    PASSWORD,
    PAST_EXPIRY,
    actions_since,
    enabled_user,
    fill_account,
    fresh_invitation,
    invite,
    mail_since,
    mark,
    member_of,
    open_assignment_of,
    other_account_user,
    seats,
    token_of,
)
from tests.support.assertions import refused_unchanged as refused

pytestmark = pytest.mark.anyio


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
