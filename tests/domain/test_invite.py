"""Inviting a user: the licence, the invitation, its email, and every refusal.

Every refusal is shown to leave the whole database exactly as it was.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from domain.enums import (
    ActorKind,
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
    User,
)
from domain.security import invitation_token, token_hash
from domain.services import invitations
from domain.services.invitations import (
    InvitationOutcome,
    invite_user,
    revoke_invitation,
)
from tests.domain.users_support import (
    PAST_EXPIRY,
    actions_since,
    audit_since,
    enabled_user,
    fill_account,
    invite,
    mail_since,
    mark,
    open_assignment_of,
    other_account_user,
    seats,
)
from tests.support.assertions import refused_unchanged as refused

pytestmark = pytest.mark.anyio


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

    monkeypatch.setattr(invitations, "_email_in_use", not_seen)

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
