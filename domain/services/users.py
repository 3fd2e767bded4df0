"""Users and their licences: invite, accept, resend, revoke, expire, assign,
unassign and edit.

Every use case is one unit of work: the change, its audit event and its
outbox emails commit together, and a refusal (DomainError) rolls back
everything the transaction did.

Concurrency. The seat counter moves only through `licensing` (conditional
UPDATEs), so `in use <= total` holds whatever happens here. Beyond that,
every use case that may move a licence locks the account row before it
changes any existing row of the account (`SELECT ... FOR NO KEY UPDATE` on
PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serialises writers), so the
licence changes of one account run one after the other and always take
their row locks in the same order: account, then invitation, then user.
invite_user checks the email and inserts its new rows before it takes the
lock, to hold it for less time: the unique email index is the final judge,
and new rows are nobody else's until the commit. Use cases that never move
a licence (accept, edit) take invitation before user too, so no two
transactions can wait on each other in a cycle. NO KEY UPDATE (rather than
UPDATE) lets other transactions keep inserting rows that reference the
account (audit events, sessions) while it is held.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from domain import config
from domain.clock import Clock
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
from domain.models import Account, Invitation, User
from domain.principal import Principal, parse_id, require_admin
from domain.security import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    hash_password,
    invitation_token,
    random_token,
    token_hash,
)
from domain.services.licensing import (
    expire_overdue_invitations,
    open_assignment,
    release_license,
    take_license,
)
from domain.services.sessions import SessionGrant, start_session
from domain.uow import UnitOfWork, unit_of_work
from domain.validation import clean_email, clean_name, clean_qualification, sort_name

# Far longer than any token we issue (43 characters); longer input is not
# worth hashing or looking up.
MAX_TOKEN_LENGTH = 200

ASSIGNABLE_ROLES = (Role.ADMIN, Role.MEMBER)


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
    clock: Clock,
) -> InvitationOutcome:
    """Create an INVITED user holding a licence, with a pending invitation."""
    require_admin(actor)
    address, email_key = clean_email(email, field="email")
    first = clean_name(first_name, field="firstName")
    last = clean_name(last_name, field="lastName")
    cleaned_qualification = clean_qualification(qualification, field="qualification")
    if role not in ASSIGNABLE_ROLES:
        raise DomainError(
            ErrorCode.OWNER_ROLE_IMMUTABLE,
            "The OWNER role moves only through transferOwnership.",
            field="role",
        )

    now = clock.now()
    async with unit_of_work(now) as work:
        # The new rows first, the account's licence last: the account row is
        # locked (so every other licence change of the account waits) for
        # the statements that need it only, not for the whole use case. The
        # new rows are nobody else's until the commit (inserting them locks
        # no existing row beyond FOR KEY SHARE on the rows they reference,
        # which the account's NO KEY UPDATE lock does not conflict with), and
        # a refusal rolls them back. The email check needs no lock either:
        # the unique account + email_key index is the final judge.
        if await _email_in_use(work, account_id=actor.account_id, email_key=email_key):
            raise _email_taken()
        try:
            user = await User.create(
                account_id=actor.account_id,
                email=address,
                email_key=email_key,
                first_name=first,
                last_name=last,
                sort_name=sort_name(first, last),
                role=role,
                qualification=cleaned_qualification,
                status=UserStatus.INVITED,
                created_at=now,
                using_db=work.connection,
            )
        except IntegrityError:
            # Another transaction committed the same email in between (the
            # unique account + email_key index is the final judge).
            raise _email_taken() from None
        await open_assignment(work, actor=actor, user_id=user.id)
        invitation = await _create_invitation(
            work, actor=actor, user=user, kind=InvitationKind.LICENSE
        )
        await _lock_account(work, actor.account_id)
        await expire_overdue_invitations(work, account_id=actor.account_id, now=now)
        await take_license(work, account_id=actor.account_id)
        await work.audit(
            actor=actor,
            action=AuditAction.USER_INVITED,
            target_user_id=user.id,
            data={
                "email": address,
                "role": role.value,
                "invitationId": invitation.id,
                "expiresAt": invitation.expires_at.isoformat(),
            },
        )
        await work.email(
            account_id=actor.account_id,
            kind=EmailKind.INVITATION,
            payload={"invitationId": invitation.id, "tokenVersion": invitation.token_version},
        )
    return InvitationOutcome(user=user, invitation=invitation)


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
        raise _invitation_invalid()
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
        # Invitation first, then user: the lock order of every use case here.
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
            raise _invitation_invalid()
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
                await User.filter(id=user.id, status__not=UserStatus.DISABLED)
                .using_db(work.connection)
                .update(password_hash=password_hash)
            )
        if changed != 1:
            raise _invitation_invalid()
        user = await User.filter(id=user.id).using_db(work.connection).get()
        itself = Principal(
            account_id=user.account_id, kind=ActorKind.USER, role=user.role, user_id=user.id
        )
        await work.audit(
            actor=itself,
            action=AuditAction.INVITATION_ACCEPTED,
            target_user_id=user.id,
            data={"invitationId": invitation.id, "kind": invitation.kind.value},
        )
        grant = await start_session(work, user=user)
    return grant


def _check_acceptable(
    invitation: Invitation | None, user: User | None, now: datetime
) -> tuple[Invitation, User]:
    if invitation is None or user is None:
        raise _invitation_invalid()
    if invitation.status == InvitationStatus.EXPIRED:
        raise _invitation_expired()
    if invitation.status != InvitationStatus.PENDING:
        raise _invitation_invalid()
    if user.status == UserStatus.DISABLED:
        raise _invitation_invalid()
    if invitation.kind == InvitationKind.LICENSE and user.status != UserStatus.INVITED:
        raise _invitation_invalid()
    # Decided from expiresAt, whether or not the expiry job has run.
    if invitation.expires_at <= now:
        raise _invitation_expired()
    return invitation, user


# ---------------------------------------------------------------------------
# Resend / revoke


async def resend_invitation(*, actor: Principal, user_id: str, clock: Clock) -> InvitationOutcome:
    """New token and expiry for the user's latest invitation; an expired one
    takes a licence again."""
    require_admin(actor)
    key = parse_id(user_id)
    now = clock.now()
    async with unit_of_work(now) as work:
        await _lock_account(work, actor.account_id)
        user = await _find_user(work, actor=actor, user_id=key)
        invitation = await _latest_invitation(work, user_id=user.id)
        if invitation is None or invitation.status not in (
            InvitationStatus.PENDING,
            InvitationStatus.EXPIRED,
        ):
            raise _invitation_invalid()

        license_taken = False
        if invitation.kind == InvitationKind.LICENSE and (
            invitation.status == InvitationStatus.EXPIRED or invitation.expires_at <= now
        ):
            # Expired, or pending past its expiry (the job has not run yet):
            # expire what is overdue first, exactly as the job would, so this
            # one's licence is released before it is taken again.
            await expire_overdue_invitations(work, account_id=actor.account_id, now=now)
            invitation = await _reload_invitation(work, invitation.id)
            user = await _reload_user(work, user.id)
            if invitation.status != InvitationStatus.EXPIRED or user.status != UserStatus.DISABLED:
                # It holds a licence by other means: nothing to resend.
                raise _invitation_invalid()
            await take_license(work, account_id=actor.account_id)
            changed = (
                await User.filter(id=user.id, status=UserStatus.DISABLED)
                .using_db(work.connection)
                .update(status=UserStatus.INVITED)
            )
            if changed != 1:
                raise _invitation_invalid()
            await open_assignment(work, actor=actor, user_id=user.id)
            license_taken = True

        invitation = await _rotate_token(work, invitation)
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
        await work.email(
            account_id=actor.account_id,
            kind=(
                EmailKind.OWNER_PASSWORD_SET
                if invitation.kind == InvitationKind.PASSWORD_SET
                else EmailKind.INVITATION_RESENT
            ),
            payload={"invitationId": invitation.id, "tokenVersion": invitation.token_version},
        )
        user = await _reload_user(work, user.id)
    return InvitationOutcome(user=user, invitation=invitation)


async def revoke_invitation(*, actor: Principal, user_id: str, clock: Clock) -> InvitationOutcome:
    """Revoke the user's pending invitation, release its licence, disable it."""
    require_admin(actor)
    key = parse_id(user_id)
    now = clock.now()
    async with unit_of_work(now) as work:
        await _lock_account(work, actor.account_id)
        user = await _find_user(work, actor=actor, user_id=key)
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
            or invitation.expires_at <= now
        ):
            raise _invitation_invalid()
        revoked = (
            await Invitation.filter(
                id=invitation.id, status=InvitationStatus.PENDING, expires_at__gt=now
            )
            .using_db(work.connection)
            .update(status=InvitationStatus.REVOKED, revoked_at=now)
        )
        if revoked != 1:
            raise _invitation_invalid()
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
        invitation = await _reload_invitation(work, invitation.id)
        user = await _reload_user(work, user.id)
    return InvitationOutcome(user=user, invitation=invitation)


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
            if await _lock_account(work, one_account, missing_ok=True) is None:
                continue
            expired += len(await expire_overdue_invitations(work, account_id=one_account, now=now))
    return expired


# ---------------------------------------------------------------------------
# Assign / unassign


async def assign_license(*, actor: Principal, user_id: str, clock: Clock) -> User:
    """Give a DISABLED user a licence: ENABLED with a password, else INVITED
    with a new invitation."""
    require_admin(actor)
    key = parse_id(user_id)
    now = clock.now()
    async with unit_of_work(now) as work:
        await _lock_account(work, actor.account_id)
        user = await _find_user(work, actor=actor, user_id=key)
        if user.status != UserStatus.DISABLED:
            raise _already_licensed()
        await expire_overdue_invitations(work, account_id=actor.account_id, now=now)
        await take_license(work, account_id=actor.account_id)
        new_status = UserStatus.ENABLED if user.password_hash else UserStatus.INVITED
        # Conditional: of two concurrent assigns only one flips the status.
        changed = (
            await User.filter(id=user.id, account_id=actor.account_id, status=UserStatus.DISABLED)
            .using_db(work.connection)
            .update(status=new_status)
        )
        if changed != 1:
            raise _already_licensed()
        await open_assignment(work, actor=actor, user_id=user.id)
        user = await _reload_user(work, user.id)
        invitation = None
        if new_status == UserStatus.INVITED:
            invitation = await _create_invitation(
                work, actor=actor, user=user, kind=InvitationKind.LICENSE
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
        if invitation is not None:
            await work.email(
                account_id=actor.account_id,
                kind=EmailKind.INVITATION,
                payload={"invitationId": invitation.id, "tokenVersion": invitation.token_version},
            )
    return user


async def unassign_license(*, actor: Principal, user_id: str, clock: Clock) -> User:
    """Release the user's licence at once: DISABLED, signed out, invitation revoked."""
    require_admin(actor)
    key = parse_id(user_id)
    now = clock.now()
    async with unit_of_work(now) as work:
        await _lock_account(work, actor.account_id)
        user = await _find_user(work, actor=actor, user_id=key)
        if user.role == Role.OWNER:
            raise DomainError(
                ErrorCode.OWNER_LICENSE_REQUIRED, "The account owner always holds a licence."
            )
        if user.status == UserStatus.DISABLED:
            raise _not_licensed()
        previous_status = user.status
        # Invitation before user: the lock order of every use case here.
        revoked = (
            await Invitation.filter(user_id=user.id, status=InvitationStatus.PENDING)
            .using_db(work.connection)
            .update(status=InvitationStatus.REVOKED, revoked_at=now)
        )
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
        await work.email(
            account_id=actor.account_id,
            kind=EmailKind.LICENSE_REMOVED,
            payload={"userId": user.id},
        )
        user = await _reload_user(work, user.id)
    return user


# ---------------------------------------------------------------------------
# Edit


async def update_user(
    *,
    actor: Principal,
    user_id: str,
    first_name: str | None = None,
    last_name: str | None = None,
    role: Role | None = None,
    qualification: str | None = None,
    clock: Clock,
) -> User:
    """Change names, qualification or role; None leaves a field unchanged and
    an empty qualification clears it. A MEMBER may change only its own names."""
    key = parse_id(user_id)
    now = clock.now()
    async with unit_of_work(now) as work:
        user = await _find_user(work, actor=actor, user_id=key, lock=True)
        if not actor.is_admin and (
            user.id != actor.user_id or role is not None or qualification is not None
        ):
            raise DomainError(
                ErrorCode.FORBIDDEN,
                "A MEMBER may change only its own first and last name.",
            )
        changes: dict[str, Any] = {}
        if first_name is not None:
            changes["first_name"] = clean_name(first_name, field="firstName")
        if last_name is not None:
            changes["last_name"] = clean_name(last_name, field="lastName")
        if qualification is not None:
            changes["qualification"] = clean_qualification(qualification, field="qualification")
        if role is not None:
            if role not in ASSIGNABLE_ROLES or user.role == Role.OWNER:
                raise DomainError(
                    ErrorCode.OWNER_ROLE_IMMUTABLE,
                    "The OWNER role moves only through transferOwnership.",
                    field="role",
                )
            changes["role"] = role
        changes = {name: value for name, value in changes.items() if getattr(user, name) != value}
        if not changes:
            return user
        before = {_AUDIT_NAMES[name]: _plain(getattr(user, name)) for name in changes}
        after = {_AUDIT_NAMES[name]: _plain(value) for name, value in changes.items()}
        if "first_name" in changes or "last_name" in changes:
            changes["sort_name"] = sort_name(
                changes.get("first_name", user.first_name),
                changes.get("last_name", user.last_name),
            )
        await User.filter(id=user.id).using_db(work.connection).update(**changes)
        await work.audit(
            actor=actor,
            action=AuditAction.USER_UPDATED,
            target_user_id=user.id,
            data={"before": before, "after": after},
        )
        user = await _reload_user(work, user.id)
    return user


_AUDIT_NAMES = {
    "first_name": "firstName",
    "last_name": "lastName",
    "role": "role",
    "qualification": "qualification",
}


def _plain(value: object) -> object:
    return value.value if isinstance(value, Role) else value


# ---------------------------------------------------------------------------
# Shared steps


async def _lock_account(
    work: UnitOfWork, account_id: int, *, missing_ok: bool = False
) -> Account | None:
    """Serialise the licence changes of one account (see the module docstring)."""
    account = (
        await Account.filter(id=account_id)
        .select_for_update(no_key=True)
        .using_db(work.connection)
        .first()
    )
    if account is None and not missing_ok:
        raise DomainError(ErrorCode.NOT_FOUND, "No such account.")
    return account


async def _find_user(
    work: UnitOfWork, *, actor: Principal, user_id: int, lock: bool = False
) -> User:
    """A user of the actor's account; any other id is simply not found."""
    query = User.filter(id=user_id, account_id=actor.account_id)
    if lock:
        query = query.select_for_update(no_key=True)
    user = await query.using_db(work.connection).first()
    if user is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No user with this ID.")
    return user


async def _reload_user(work: UnitOfWork, user_id: int) -> User:
    return await User.filter(id=user_id).using_db(work.connection).get()


async def _reload_invitation(work: UnitOfWork, invitation_id: int) -> Invitation:
    return await Invitation.filter(id=invitation_id).using_db(work.connection).get()


async def _latest_invitation(work: UnitOfWork, *, user_id: int) -> Invitation | None:
    return (
        await Invitation.filter(user_id=user_id).order_by("-id").using_db(work.connection).first()
    )


async def _email_in_use(work: UnitOfWork, *, account_id: int, email_key: str) -> bool:
    return (
        await User.filter(account_id=account_id, email_key=email_key)
        .using_db(work.connection)
        .exists()
    )


async def _create_invitation(
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
        invited_by_user_id=actor.user_id if actor.kind == ActorKind.USER else None,
        created_at=work.now,
        expires_at=work.now + config.current().invitation_ttl,
        using_db=work.connection,
    )
    invitation.token_hash = token_hash(invitation_token(invitation.id, invitation.token_version))
    await invitation.save(using_db=work.connection, update_fields=["token_hash"])
    return invitation


async def _rotate_token(work: UnitOfWork, invitation: Invitation) -> Invitation:
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
        raise _invitation_invalid()
    rotated = await _reload_invitation(work, invitation.id)
    rotated.token_hash = token_hash(invitation_token(rotated.id, rotated.token_version))
    await rotated.save(using_db=work.connection, update_fields=["token_hash"])
    return rotated


def _email_taken() -> DomainError:
    return DomainError(
        ErrorCode.EMAIL_TAKEN,
        "A user with this email already exists in the account.",
        field="email",
    )


def _invitation_invalid() -> DomainError:
    return DomainError(ErrorCode.INVITATION_INVALID, "This invitation is not valid.")


def _invitation_expired() -> DomainError:
    return DomainError(ErrorCode.INVITATION_EXPIRED, "This invitation has expired.")


def _already_licensed() -> DomainError:
    return DomainError(ErrorCode.ALREADY_LICENSED, "This user already holds a licence.")


def _not_licensed() -> DomainError:
    return DomainError(ErrorCode.NOT_LICENSED, "This user holds no licence.")
