"""Accepting an invitation (or the owner's password-set link): the password, the
status, the session, and every refusal.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.enums import (
    ActorKind,
    AuditAction,
    InvitationStatus,
    Role,
    UserStatus,
)
from domain.errors import ErrorCode
from domain.models import (
    Invitation,
    LicenseAssignment,
    Session,
    User,
)
from domain.security import token_hash, verify_password
from domain.services.invitations import (
    accept_invitation,
    expire_invitations,
    revoke_invitation,
)
from domain.services.licensing import unassign_license
from tests.domain.users_support import (
    PASSWORD,
    PAST_EXPIRY,
    actions_since,
    audit_since,
    invite,
    mail_since,
    mark,
    seats,
    token_of,
)
from tests.support.assertions import refused_unchanged as refused

pytestmark = pytest.mark.anyio


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
