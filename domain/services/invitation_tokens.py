"""Invitation rows and their tokens: issued, rotated by a resend, and refused.

The token itself is never stored: it is derived from the secret key, the
row's id and its version (domain.security), and only its hash is kept.
"""

from __future__ import annotations

from tortoise.expressions import F

from domain import config
from domain.emails import INVITATION_LINK_PAYLOADS
from domain.enums import EmailKind, InvitationKind, InvitationStatus
from domain.errors import DomainError, ErrorCode
from domain.models import Invitation, User
from domain.principal import Principal
from domain.security import invitation_token, random_token, token_hash
from domain.uow import UnitOfWork


async def create_invitation(
    work: UnitOfWork, *, actor: Principal, user: User, kind: InvitationKind
) -> Invitation:
    # A placeholder hash first: the real token depends on the row's id.
    invitation = await Invitation.create(
        account_id=user.account_id,
        user_id=user.id,
        kind=kind,
        email=user.email,
        token_version=1,
        token_hash=token_hash(random_token()),
        status=InvitationStatus.PENDING,
        invited_by_user_id=actor.acting_user_id,
        created_at=work.now,
        expires_at=work.now + config.current().invitation_ttl,
        using_db=work.connection,
    )
    invitation.token_hash = token_hash(invitation_token(invitation.id, invitation.token_version))
    await invitation.save(using_db=work.connection, update_fields=["token_hash"])
    return invitation


async def rotate_token(work: UnitOfWork, invitation: Invitation) -> Invitation:
    """Bump the version (the old token stops matching), renew the expiry and
    make it PENDING again; created_at stays."""
    bumped = (
        await Invitation.filter(
            id=invitation.id,
            status__in=[InvitationStatus.PENDING, InvitationStatus.EXPIRED],
        )
        .using_db(work.connection)
        .update(
            token_version=F("token_version") + 1,
            status=InvitationStatus.PENDING,
            expires_at=work.now + config.current().invitation_ttl,
        )
    )
    if bumped != 1:
        raise invitation_invalid()
    rotated = await reload_invitation(work, invitation.id)
    rotated.token_hash = token_hash(invitation_token(rotated.id, rotated.token_version))
    await rotated.save(using_db=work.connection, update_fields=["token_hash"])
    return rotated


async def reload_invitation(work: UnitOfWork, invitation_id: int) -> Invitation:
    return await Invitation.filter(id=invitation_id).using_db(work.connection).get()


def invitation_invalid() -> DomainError:
    return DomainError(ErrorCode.INVITATION_INVALID, "This invitation is not valid.")


def invitation_expired() -> DomainError:
    return DomainError(ErrorCode.INVITATION_EXPIRED, "This invitation has expired.")


async def email_invitation(work: UnitOfWork, invitation: Invitation, *, kind: EmailKind) -> None:
    # The version, not the token: the job derives the token when it renders,
    # and skips the email once a resend has superseded this version.
    await work.email(
        account_id=invitation.account_id,
        payload=INVITATION_LINK_PAYLOADS[kind](
            invitation_id=invitation.id, token_version=invitation.token_version
        ),
    )


async def revoke_pending_invitations(work: UnitOfWork, *, user_id: int) -> int:
    """Revoke the user's pending invitations (its licence is being released); return how many."""
    return (
        await Invitation.filter(user_id=user_id, status=InvitationStatus.PENDING)
        .using_db(work.connection)
        .update(status=InvitationStatus.REVOKED, revoked_at=work.now)
    )
