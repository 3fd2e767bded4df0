"""Helpers of the user and licence tests: invite, sign in, watch what was written.

`mark` and the `*_since` helpers show what a successful call wrote; the tests
show with `refused_unchanged` that a refusal left the database as it was.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from domain.clock import FixedClock
from domain.enums import (
    AuditAction,
    EmailKind,
    Role,
)
from domain.models import (
    Account,
    AuditEvent,
    Invitation,
    LicenseAssignment,
    OutboxMessage,
    User,
)
from domain.principal import Principal
from domain.security import invitation_token
from domain.services.accounts import CreatedAccount
from domain.services.invitations import (
    InvitationOutcome,
    accept_invitation,
    invite_user,
)
from tests.support.factories import make_account
from tests.support.principals import user_principal

PASSWORD = "correct horse battery"
PAST_EXPIRY = timedelta(days=7, seconds=1)


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
    principal = user_principal(owner.account_id, grant.user.id, role)
    return grant.user, principal


def member_of(account: CreatedAccount, user_id: int, role: Role = Role.MEMBER) -> Principal:
    return user_principal(account.account_id, user_id, role)


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
