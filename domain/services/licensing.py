"""Licences: assign and unassign, and the take/release steps every use case shares.

The seat counter on the account moves only through these functions, always
with a conditional UPDATE, so `in use <= total` holds under any concurrency
and on every backend (the CHECK constraint is the last line of defence).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tortoise.expressions import F
from tortoise.queryset import QuerySet

from domain.clock import Clock
from domain.emails import LicenseRemovedPayload
from domain.enums import (
    AssignmentEndReason,
    AuditAction,
    EmailKind,
    InvitationKind,
    InvitationStatus,
    Role,
    UserStatus,
    WebhookEventType,
)
from domain.errors import DomainError, ErrorCode
from domain.models import Account, Invitation, LicenseAssignment, Session, User
from domain.principal import Principal
from domain.rules.seats import LICENSED_STATUSES
from domain.services.account_lock import licence_change, reload_user
from domain.services.invitation_tokens import (
    create_invitation,
    email_invitation,
    revoke_pending_invitations,
)
from domain.uow import UnitOfWork

# ---------------------------------------------------------------------------
# Assign / unassign


async def assign_license(*, actor: Principal, user_id: str, clock: Clock) -> User:
    """Give a DISABLED user a licence: ENABLED with a password, else INVITED
    with a new invitation."""
    async with licence_change(actor=actor, user_id=user_id, clock=clock) as (work, user):
        if user.holds_license:
            raise _already_licensed()
        await expire_overdue_invitations(work, account_id=actor.account_id, now=work.now)
        new_status = UserStatus.ENABLED if user.password_hash else UserStatus.INVITED
        if not await grant_license(work, actor=actor, user_id=user.id, status=new_status):
            raise _already_licensed()
        assigned = await reload_user(work, user.id)
        invitation = None
        if new_status == UserStatus.INVITED:
            invitation = await create_invitation(
                work, actor=actor, user=assigned, kind=InvitationKind.LICENSE
            )
        await work.audit(
            actor=actor,
            action=AuditAction.LICENSE_ASSIGNED,
            target_user_id=user.id,
            data={
                "status": new_status.value,
                "invitationId": invitation.id if invitation else None,
            },
        )
        await work.webhook(
            account_id=actor.account_id,
            event_type=WebhookEventType.LICENSE_ASSIGNED,
            data={"userId": str(user.id)},
        )
        if invitation is not None:
            await email_invitation(work, invitation, kind=EmailKind.INVITATION)
    return assigned


async def unassign_license(*, actor: Principal, user_id: str, clock: Clock) -> User:
    """Release the user's licence at once: DISABLED, signed out, invitation revoked."""
    async with licence_change(actor=actor, user_id=user_id, clock=clock) as (work, user):
        if user.role == Role.OWNER:
            raise DomainError(
                ErrorCode.OWNER_LICENSE_REQUIRED, "The account owner always holds a licence."
            )
        if not user.holds_license:
            raise _not_licensed()
        previous_status = user.status
        revoked = await revoke_pending_invitations(work, user_id=user.id)
        released = await release_license(
            work, actor=actor, user_id=user.id, reason=AssignmentEndReason.UNASSIGNED
        )
        if not released:
            raise _not_licensed()
        await work.audit(
            actor=actor,
            action=AuditAction.LICENSE_UNASSIGNED,
            target_user_id=user.id,
            data={"previousStatus": previous_status.value, "invitationRevoked": revoked > 0},
        )
        await work.webhook(
            account_id=actor.account_id,
            event_type=WebhookEventType.LICENSE_UNASSIGNED,
            data={"userId": str(user.id)},
        )
        await work.email(
            account_id=actor.account_id, payload=LicenseRemovedPayload(user_id=user.id)
        )
        unassigned = await reload_user(work, user.id)
    return unassigned


def _already_licensed() -> DomainError:
    return DomainError(ErrorCode.ALREADY_LICENSED, "This user already holds a licence.")


def _not_licensed() -> DomainError:
    return DomainError(ErrorCode.NOT_LICENSED, "This user holds no licence.")


# ---------------------------------------------------------------------------
# Steps


async def take_license(work: UnitOfWork, *, account_id: int) -> None:
    """Count one more licence in use, or refuse when none is free."""
    taken = (
        await Account.filter(id=account_id, seats_in_use__lt=F("seats_total"))
        .using_db(work.connection)
        .update(seats_in_use=F("seats_in_use") + 1)
    )
    if taken != 1:
        raise no_available_licenses()


def no_available_licenses() -> DomainError:
    return DomainError(ErrorCode.NO_AVAILABLE_LICENSES, "Every purchased licence is in use.")


async def give_back_license(work: UnitOfWork, *, account_id: int, count: int = 1) -> None:
    await (
        Account.filter(id=account_id)
        .using_db(work.connection)
        .update(seats_in_use=F("seats_in_use") - count)
    )


async def open_assignment(work: UnitOfWork, *, actor: Principal, user_id: int) -> None:
    await LicenseAssignment.create(
        account_id=actor.account_id,
        user_id=user_id,
        assigned_at=work.now,
        assigned_by_kind=actor.kind,
        assigned_by_user_id=actor.acting_user_id,
        assigned_by_token_id=actor.acting_token_id,
        using_db=work.connection,
    )


async def close_assignment(
    work: UnitOfWork, *, actor: Principal, user_id: int, reason: AssignmentEndReason
) -> None:
    await close_assignments(work, actor=actor, user_ids=[user_id], reason=reason)


async def close_assignments(
    work: UnitOfWork, *, actor: Principal, user_ids: Sequence[int], reason: AssignmentEndReason
) -> None:
    await (
        LicenseAssignment.filter(user_id__in=list(user_ids), unassigned_at__isnull=True)
        .using_db(work.connection)
        .update(
            unassigned_at=work.now,
            unassigned_by_kind=actor.kind,
            unassigned_by_user_id=actor.acting_user_id,
            unassigned_by_token_id=actor.acting_token_id,
            end_reason=reason,
        )
    )


async def end_sessions(work: UnitOfWork, *, user_id: int) -> None:
    await end_sessions_of(work, user_ids=[user_id])


async def end_sessions_of(work: UnitOfWork, *, user_ids: Sequence[int]) -> None:
    await (
        Session.filter(user_id__in=list(user_ids), ended_at__isnull=True)
        .using_db(work.connection)
        .update(ended_at=work.now)
    )


async def grant_license(
    work: UnitOfWork, *, actor: Principal, user_id: int, status: UserStatus
) -> bool:
    """Give a DISABLED user a licence and make it `status`, in one conditional step.

    Refuses (NO_AVAILABLE_LICENSES) when none is free. Returns False when the
    user is no longer DISABLED: of two concurrent grants only one flips the
    status, and the caller refuses, rolling back the licence taken.
    """
    await take_license(work, account_id=actor.account_id)
    changed = (
        await User.filter(id=user_id, account_id=actor.account_id, status=UserStatus.DISABLED)
        .using_db(work.connection)
        .update(status=status)
    )
    if changed != 1:
        return False
    await open_assignment(work, actor=actor, user_id=user_id)
    return True


async def release_license(
    work: UnitOfWork,
    *,
    actor: Principal,
    user_id: int,
    reason: AssignmentEndReason,
    from_status: UserStatus | None = None,
) -> bool:
    """Make a licensed user DISABLED and free its licence, in one conditional step.

    Returns False (and changes nothing) when the user no longer holds a licence
    (or is not in `from_status`), so two concurrent releases count once.
    """
    statuses = [from_status] if from_status else list(LICENSED_STATUSES)
    changed = (
        await User.filter(id=user_id, account_id=actor.account_id, status__in=statuses)
        .using_db(work.connection)
        .update(status=UserStatus.DISABLED)
    )
    if changed != 1:
        return False
    await give_back_license(work, account_id=actor.account_id)
    await close_assignment(work, actor=actor, user_id=user_id, reason=reason)
    await end_sessions(work, user_id=user_id)
    return True


async def expire_overdue_invitations(
    work: UnitOfWork, *, account_id: int, now: datetime
) -> list[int]:
    """Expire the account's pending invitations past their expiry; return their users.

    Runs before any licence is taken, so an expired invitation never blocks a
    new one whether or not the periodic expiry job has run yet.
    """
    system = Principal.system(account_id)
    overdue = (
        await overdue_invitations(account_id=account_id, now=now)
        .using_db(work.connection)
        .values_list("id", "user_id")
    )
    expired_users: list[int] = []
    for invitation_id, user_id in overdue:
        flipped = (
            await Invitation.filter(id=invitation_id, status=InvitationStatus.PENDING)
            .using_db(work.connection)
            .update(status=InvitationStatus.EXPIRED)
        )
        if flipped != 1:
            continue
        released = await release_license(
            work,
            actor=system,
            user_id=user_id,
            reason=AssignmentEndReason.INVITATION_EXPIRED,
            from_status=UserStatus.INVITED,
        )
        await work.audit(
            actor=system,
            action=AuditAction.INVITATION_EXPIRED,
            target_user_id=user_id,
            data={"invitationId": invitation_id, "licenseReleased": released},
        )
        await work.webhook(
            account_id=system.account_id,
            event_type=WebhookEventType.INVITATION_EXPIRED,
            data={"userId": str(user_id)},
        )
        expired_users.append(user_id)
    return expired_users


def overdue_invitations(*, account_id: int, now: datetime) -> QuerySet[Invitation]:
    """The account's licence invitations still PENDING past their expiry: the
    ones the next licence change expires first, releasing their licences."""
    return Invitation.filter(
        account_id=account_id,
        kind=InvitationKind.LICENSE,
        status=InvitationStatus.PENDING,
        expires_at__lte=now,
    )
