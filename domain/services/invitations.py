"""Invitations: invite, accept, resend, revoke, and the expiry job.

Every use case is one unit of work: the change, its audit event and its
outbox emails commit together, and a refusal (DomainError) rolls back
everything the transaction did. The order of the row locks is explained
in `account_lock`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError

from domain.clock import Clock
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
from domain.models import Invitation, User
from domain.principal import Principal, require_admin
from domain.rules.seats import LICENSED_STATUSES
from domain.security import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, hash_password, token_hash
from domain.services.account_lock import licence_change, lock_account, reload_user
from domain.services.invitation_tokens import (
    create_invitation,
    email_invitation,
    invitation_expired,
    invitation_invalid,
    reload_invitation,
    rotate_token,
)
from domain.services.licensing import (
    expire_overdue_invitations,
    grant_license,
    open_assignment,
    release_license,
    take_license,
)
from domain.services.sessions import SessionGrant, start_session
from domain.uow import UnitOfWork, unit_of_work
from domain.validation import clean_invitation, sort_name

# Far longer than any token we issue (43 characters); longer input is not
# worth hashing or looking up.
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class InvitationOutcome:
    user: User
    invitation: Invitation


# ---------------------------------------------------------------------------
# Invite


async def invite_user(
    *,
    actor: Principal,
    email: str,
    first_name: str,
    last_name: str,
    role: Role = Role.MEMBER,
    qualification: str | None = None,
    external_id: str | None = None,
    scim_user_name: str | None = None,
    clock: Clock,
) -> InvitationOutcome:
    """Create an INVITED user holding a licence, with a pending invitation.

    A SCIM provider also gives its externalId and userName (None: the email)."""
    require_admin(actor)
    given = clean_invitation(
        email=email,
        first_name=first_name,
        last_name=last_name,
        role=role,
        qualification=qualification,
    )

    now = clock.now()
    async with unit_of_work(now) as work:
        # The new rows first, the account lock last (see account_lock); the
        # unique account + email_key index, not this check, is the judge.
        if await _email_in_use(work, account_id=actor.account_id, email_key=given.email_key):
            raise email_taken()
        try:
            user = await User.create(
                account_id=actor.account_id,
                email=given.email,
                email_key=given.email_key,
                first_name=given.first_name,
                last_name=given.last_name,
                sort_name=sort_name(given.first_name, given.last_name),
                role=role,
                qualification=given.qualification,
                status=UserStatus.INVITED,
                created_at=now,
                external_id=external_id,
                scim_user_name=scim_user_name,
                scim_user_name_key=scim_user_name.lower() if scim_user_name else None,
                using_db=work.connection,
            )
        except IntegrityError:
            # Another transaction committed the same email in between.
            raise email_taken() from None
        await open_assignment(work, actor=actor, user_id=user.id)
        invitation = await create_invitation(
            work, actor=actor, user=user, kind=InvitationKind.LICENSE
        )
        await lock_account(work, actor.account_id)
        await expire_overdue_invitations(work, account_id=actor.account_id, now=now)
        await take_license(work, account_id=actor.account_id)
        await work.audit(
            actor=actor,
            action=AuditAction.USER_INVITED,
            target_user_id=user.id,
            data={
                "email": given.email,
                "role": role.value,
                "invitationId": invitation.id,
                "expiresAt": invitation.expires_at.isoformat(),
            },
        )
        await work.webhook(
            account_id=actor.account_id,
            event_type=WebhookEventType.USER_INVITED,
            data={"userId": str(user.id)},
        )
        await email_invitation(work, invitation, kind=EmailKind.INVITATION)
    return InvitationOutcome(user=user, invitation=invitation)


async def _email_in_use(work: UnitOfWork, *, account_id: int, email_key: str) -> bool:
    return (
        await User.filter(account_id=account_id, email_key=email_key)
        .using_db(work.connection)
        .exists()
    )


def email_taken() -> DomainError:
    return DomainError(
        ErrorCode.EMAIL_TAKEN,
        "A user with this email already exists in the account.",
        field="email",
    )


# ---------------------------------------------------------------------------
# Accept (public)


async def accept_invitation(*, token: str, password: str, clock: Clock) -> SessionGrant:
    """Set the password of the invited user (or the owner), enable it, sign it in."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise DomainError(
            ErrorCode.WEAK_PASSWORD,
            f"Use {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
            field="password",
        )
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise invitation_invalid()
    hashed_token = token_hash(token)
    now = clock.now()

    # Refuse a bad token before the costly hashing; this read takes no lock
    # and the transaction below checks everything again.
    invitation = await Invitation.filter(token_hash=hashed_token).first()
    user = await User.filter(id=invitation.user_id).first() if invitation else None
    _check_acceptable(invitation, user, now)

    # Argon2id is slow on purpose: hash off the event loop and before the
    # transaction, so no row (or SQLite's write lock) is held meanwhile.
    password_hash = await asyncio.to_thread(hash_password, password)

    async with unit_of_work(now) as work:
        invitation = (
            await Invitation.filter(token_hash=hashed_token).using_db(work.connection).first()
        )
        user = (
            await User.filter(id=invitation.user_id).using_db(work.connection).first()
            if invitation
            else None
        )
        invitation, user = _check_acceptable(invitation, user, now)
        accepted = (
            await Invitation.filter(
                id=invitation.id,
                token_hash=hashed_token,
                status=InvitationStatus.PENDING,
                expires_at__gt=now,
            )
            .using_db(work.connection)
            .update(status=InvitationStatus.ACCEPTED, accepted_at=now)
        )
        if accepted != 1:
            raise invitation_invalid()
        if invitation.kind == InvitationKind.LICENSE:
            changed = (
                await User.filter(id=user.id, status=UserStatus.INVITED)
                .using_db(work.connection)
                .update(status=UserStatus.ENABLED, password_hash=password_hash)
            )
        else:
            # The owner's password-set link: the password only, never the
            # licence or the status.
            changed = (
                await User.filter(id=user.id, status__in=LICENSED_STATUSES)
                .using_db(work.connection)
                .update(password_hash=password_hash)
            )
        if changed != 1:
            raise invitation_invalid()
        user = await reload_user(work, user.id)
        await work.audit(
            actor=Principal.of_user(user),
            action=AuditAction.INVITATION_ACCEPTED,
            target_user_id=user.id,
            data={"invitationId": invitation.id, "kind": invitation.kind.value},
        )
        await work.webhook(
            account_id=user.account_id,
            event_type=WebhookEventType.INVITATION_ACCEPTED,
            data={"userId": str(user.id)},
        )
        grant = await start_session(work, user=user)
    return grant


def _check_acceptable(
    invitation: Invitation | None, user: User | None, now: datetime
) -> tuple[Invitation, User]:
    if invitation is None or user is None:
        raise invitation_invalid()
    if invitation.status == InvitationStatus.EXPIRED:
        raise invitation_expired()
    if invitation.status != InvitationStatus.PENDING:
        raise invitation_invalid()
    if not user.holds_license:
        raise invitation_invalid()
    if invitation.kind == InvitationKind.LICENSE and user.status != UserStatus.INVITED:
        raise invitation_invalid()
    # Decided from expiresAt, whether or not the expiry job has run.
    if invitation.expires_at <= now:
        raise invitation_expired()
    return invitation, user


# ---------------------------------------------------------------------------
# Resend / revoke


async def resend_invitation(*, actor: Principal, user_id: str, clock: Clock) -> InvitationOutcome:
    """New token and expiry for the user's latest invitation; an expired one
    takes a licence again."""
    async with licence_change(actor=actor, user_id=user_id, clock=clock) as (work, user):
        invitation = await _latest_invitation(work, user_id=user.id)
        if invitation is None or invitation.status not in (
            InvitationStatus.PENDING,
            InvitationStatus.EXPIRED,
        ):
            raise invitation_invalid()

        license_taken = False
        if invitation.kind == InvitationKind.LICENSE and (
            invitation.status == InvitationStatus.EXPIRED or invitation.expires_at <= work.now
        ):
            # Expired, or pending past its expiry (the job has not run yet):
            # expire what is overdue first, exactly as the job would, so this
            # one's licence is released before it is taken again.
            await expire_overdue_invitations(work, account_id=actor.account_id, now=work.now)
            invitation = await reload_invitation(work, invitation.id)
            after_expiry = await reload_user(work, user.id)
            if invitation.status != InvitationStatus.EXPIRED or after_expiry.holds_license:
                # It holds a licence by other means: nothing to resend.
                raise invitation_invalid()
            if not await grant_license(
                work, actor=actor, user_id=user.id, status=UserStatus.INVITED
            ):
                raise invitation_invalid()
            license_taken = True

        invitation = await rotate_token(work, invitation)
        await work.audit(
            actor=actor,
            action=AuditAction.INVITATION_RESENT,
            target_user_id=user.id,
            data={
                "invitationId": invitation.id,
                "kind": invitation.kind.value,
                "licenseTaken": license_taken,
                "expiresAt": invitation.expires_at.isoformat(),
            },
        )
        await work.webhook(
            account_id=actor.account_id,
            event_type=WebhookEventType.INVITATION_RESENT,
            data={"userId": str(user.id)},
        )
        await email_invitation(
            work,
            invitation,
            kind=(
                EmailKind.OWNER_PASSWORD_SET
                if invitation.kind == InvitationKind.PASSWORD_SET
                else EmailKind.INVITATION_RESENT
            ),
        )
        resent_to = await reload_user(work, user.id)
    return InvitationOutcome(user=resent_to, invitation=invitation)


async def revoke_invitation(*, actor: Principal, user_id: str, clock: Clock) -> InvitationOutcome:
    """Revoke the user's pending invitation, release its licence, disable it."""
    async with licence_change(actor=actor, user_id=user_id, clock=clock) as (work, user):
        invitation = await _latest_invitation(work, user_id=user.id)
        if user.role == Role.OWNER or (
            invitation is not None and invitation.kind == InvitationKind.PASSWORD_SET
        ):
            raise DomainError(
                ErrorCode.OWNER_LICENSE_REQUIRED,
                "The owner's password-set link cannot be revoked: the owner always "
                "holds a licence.",
            )
        # A pending invitation past its expiry is expired, whether or not the
        # expiry job has run.
        if (
            invitation is None
            or invitation.status != InvitationStatus.PENDING
            or invitation.expires_at <= work.now
        ):
            raise invitation_invalid()
        revoked = (
            await Invitation.filter(
                id=invitation.id, status=InvitationStatus.PENDING, expires_at__gt=work.now
            )
            .using_db(work.connection)
            .update(status=InvitationStatus.REVOKED, revoked_at=work.now)
        )
        if revoked != 1:
            raise invitation_invalid()
        released = await release_license(
            work,
            actor=actor,
            user_id=user.id,
            reason=AssignmentEndReason.INVITATION_REVOKED,
        )
        await work.audit(
            actor=actor,
            action=AuditAction.INVITATION_REVOKED,
            target_user_id=user.id,
            data={"invitationId": invitation.id, "licenseReleased": released},
        )
        await work.webhook(
            account_id=actor.account_id,
            event_type=WebhookEventType.INVITATION_REVOKED,
            data={"userId": str(user.id)},
        )
        invitation = await reload_invitation(work, invitation.id)
        revoked_from = await reload_user(work, user.id)
    return InvitationOutcome(user=revoked_from, invitation=invitation)


async def _latest_invitation(work: UnitOfWork, *, user_id: int) -> Invitation | None:
    return (
        await Invitation.filter(user_id=user_id).order_by("-id").using_db(work.connection).first()
    )


# ---------------------------------------------------------------------------
# Expiry (periodic job)


async def expire_invitations(*, clock: Clock, account_id: int | None = None) -> int:
    """Expire overdue pending invitations (one account, or every account that
    has some); return how many. One transaction per account; idempotent and
    safe to run twice at once (the second finds nothing left to do)."""
    now = clock.now()
    if account_id is None:
        found = (
            await Invitation.filter(
                kind=InvitationKind.LICENSE,
                status=InvitationStatus.PENDING,
                expires_at__lte=now,
            )
            .distinct()
            .order_by("account_id")
            .values_list("account_id")
        )
        account_ids: Sequence[int] = [int(row[0]) for row in found]
    else:
        account_ids = [account_id]
    expired = 0
    for one_account in account_ids:
        async with unit_of_work(now) as work:
            if await lock_account(work, one_account, missing_ok=True) is None:
                continue
            expired += len(await expire_overdue_invitations(work, account_id=one_account, now=now))
    return expired
