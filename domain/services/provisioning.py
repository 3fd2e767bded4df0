"""SCIM provisioning (SPEC section 9): an identity provider's user, kept in step.

A provider's request is reduced to the state it wants (`DesiredUser`), and
that state is reached through the services the GraphQL mutations use, so the
same rules, audit events, emails and webhooks apply: `invite_user` for a new
active user, `assign_license` / `unassign_license` for `active`,
`update_user` for names and title. Only what none of them does lives here:
the provider's identity (userName, externalId, a changed email), an inactive
new user, a deprovisioned record and re-linking it.

A replace may take up to three of those use cases, each its own transaction.
Everything is validated, and the email and userName are checked, before the
first; the licence moves first, so a refusal (no free licence, the owner's
licence) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from domain.clock import Clock
from domain.enums import (
    ApiTokenScope,
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
from domain.principal import Principal, parse_id, require_admin, require_scope
from domain.services.account_lock import find_user, reload_user
from domain.services.invitation_tokens import email_invitation, rotate_token
from domain.services.invitations import invite_user
from domain.services.licensing import assign_license, unassign_license
from domain.services.profile import update_user
from domain.uow import UnitOfWork, unit_of_work
from domain.validation import EMAIL_MAX, clean_email, clean_name, clean_qualification, sort_name


@dataclass(frozen=True, slots=True)
class DesiredUser:
    """What the provider wants the user to be (names already derived)."""

    user_name: str
    email: str
    first_name: str
    last_name: str
    qualification: str | None
    external_id: str | None
    active: bool


@dataclass(frozen=True, slots=True)
class _Clean:
    user_name: str
    user_name_key: str
    email: str
    email_key: str
    first_name: str
    last_name: str
    qualification: str | None
    external_id: str | None
    active: bool


def _clean(desired: DesiredUser) -> _Clean:
    user_name = desired.user_name.strip()
    if not user_name or len(user_name) > EMAIL_MAX:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "userName must be 1-320 characters.", field="userName"
        )
    address, email_key = clean_email(desired.email, field="emails")
    external_id = (desired.external_id or "").strip() or None
    if external_id is not None and len(external_id) > EMAIL_MAX:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "externalId is at most 320 characters.", field="externalId"
        )
    return _Clean(
        user_name=user_name,
        user_name_key=user_name.lower(),
        email=address,
        email_key=email_key,
        first_name=clean_name(desired.first_name, field="name.givenName"),
        last_name=clean_name(desired.last_name, field="name.familyName"),
        qualification=clean_qualification(desired.qualification or "", field="title"),
        external_id=external_id,
        active=desired.active,
    )


def user_name_of(user: User) -> str:
    """The SCIM userName: as the provider sent it, else the email."""
    return user.scim_user_name or user.email


def _same_user_name(key: str) -> Q:
    return Q(scim_user_name_key=key) | Q(scim_user_name_key__isnull=True, email_key=key)


def _taken() -> DomainError:
    return DomainError(
        ErrorCode.EMAIL_TAKEN,
        "A user with this userName or email already exists in the account.",
        field="userName",
    )


async def _require_free(actor: Principal, clean: _Clean, *, other_than: int | None) -> None:
    # The unique indexes judge; this read only makes the refusal come first.
    query = User.filter(
        _same_user_name(clean.user_name_key) | Q(email_key=clean.email_key),
        account_id=actor.account_id,
    )
    if other_than is not None:
        query = query.exclude(id=other_than)
    if await query.exists():
        raise _taken()


def _scim_actor(actor: Principal) -> None:
    require_scope(actor, ApiTokenScope.SCIM)
    require_admin(actor)


# ---------------------------------------------------------------------------
# Use cases


async def provision_user(*, actor: Principal, desired: DesiredUser, clock: Clock) -> User:
    """SCIM POST: a new user (an invitation when active), or a deprovisioned
    record with the same userName or email re-linked."""
    _scim_actor(actor)
    clean = _clean(desired)
    deprovisioned = await User.filter(
        _same_user_name(clean.user_name_key) | Q(email_key=clean.email_key),
        account_id=actor.account_id,
        deprovisioned_at__isnull=False,
    ).first()
    if deprovisioned is not None:
        return await _apply(actor, deprovisioned, clean, clock=clock)
    await _require_free(actor, clean, other_than=None)
    if clean.active:
        outcome = await invite_user(
            actor=actor,
            email=clean.email,
            first_name=clean.first_name,
            last_name=clean.last_name,
            role=Role.MEMBER,
            qualification=clean.qualification,
            external_id=clean.external_id,
            scim_user_name=clean.user_name,
            clock=clock,
        )
        return outcome.user
    return await _create_inactive(actor, clean, clock=clock)


async def replace_user(
    *, actor: Principal, user_id: str, desired: DesiredUser, clock: Clock
) -> User:
    """SCIM PUT, and PATCH once applied to the current state."""
    _scim_actor(actor)
    clean = _clean(desired)
    user = await find_provisioned(actor=actor, user_id=user_id)
    return await _apply(actor, user, clean, clock=clock)


async def deprovision_user(*, actor: Principal, user_id: str, clock: Clock) -> None:
    """SCIM DELETE: the licence released as by unassignLicense, the record kept
    but no longer a SCIM resource."""
    _scim_actor(actor)
    user = await find_provisioned(actor=actor, user_id=user_id)
    if user.role == Role.OWNER:
        raise DomainError(
            ErrorCode.OWNER_LICENSE_REQUIRED, "The account owner always holds a licence."
        )
    if user.holds_license:
        await unassign_license(actor=actor, user_id=str(user.id), clock=clock)
    async with unit_of_work(clock.now()) as work:
        marked = (
            await User.filter(id=user.id, deprovisioned_at__isnull=True)
            .using_db(work.connection)
            .update(deprovisioned_at=work.now)
        )
        if marked != 1:
            raise _not_found()
        await work.audit(
            actor=actor,
            action=AuditAction.USER_DEPROVISIONED,
            target_user_id=user.id,
            data={"userName": user_name_of(user), "externalId": user.external_id},
        )


async def find_provisioned(*, actor: Principal, user_id: str) -> User:
    """A user of the actor's account that is a SCIM resource (not deprovisioned)."""
    _scim_actor(actor)
    user = await User.filter(
        id=parse_id(user_id), account_id=actor.account_id, deprovisioned_at__isnull=True
    ).first()
    if user is None:
        raise _not_found()
    return user


def _not_found() -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, "No user with this ID.")


# ---------------------------------------------------------------------------
# Steps


async def _apply(actor: Principal, user: User, clean: _Clean, *, clock: Clock) -> User:
    await _require_free(actor, clean, other_than=user.id)
    target = str(user.id)
    if clean.active and not user.holds_license:
        await assign_license(actor=actor, user_id=target, clock=clock)
    elif not clean.active and user.holds_license:
        await unassign_license(actor=actor, user_id=target, clock=clock)
    await update_user(
        actor=actor,
        user_id=target,
        first_name=clean.first_name,
        last_name=clean.last_name,
        qualification=clean.qualification or "",
        clock=clock,
    )
    return await _write_identity(actor, user.id, clean, clock=clock)


async def _write_identity(actor: Principal, user_id: int, clean: _Clean, *, clock: Clock) -> User:
    """userName, externalId, the email and the deprovisioned mark: one
    USER_UPDATED for what changed as the provider sees it; a changed email
    also moves a pending invitation to the new address."""
    async with unit_of_work(clock.now()) as work:
        user = await find_user(work, actor=actor, user_id=user_id, lock=True)
        changes = {
            "scim_user_name": clean.user_name,
            "scim_user_name_key": clean.user_name_key,
            "external_id": clean.external_id,
            "email": clean.email,
            "email_key": clean.email_key,
            "deprovisioned_at": None,
        }
        changes = {name: value for name, value in changes.items() if getattr(user, name) != value}
        if not changes:
            return user
        try:
            await User.filter(id=user.id).using_db(work.connection).update(**changes)
        except IntegrityError:
            raise _taken() from None
        before = {
            "userName": user_name_of(user),
            "externalId": user.external_id,
            "email": user.email,
            "deprovisioned": user.deprovisioned_at is not None,
        }
        after = {
            "userName": clean.user_name,
            "externalId": clean.external_id,
            "email": clean.email,
            "deprovisioned": False,
        }
        changed = [name for name in before if before[name] != after[name]]
        if changed:
            await work.audit(
                actor=actor,
                action=AuditAction.USER_UPDATED,
                target_user_id=user.id,
                data={
                    "before": {name: before[name] for name in changed},
                    "after": {name: after[name] for name in changed},
                },
            )
            await work.webhook(
                account_id=actor.account_id,
                event_type=WebhookEventType.USER_UPDATED,
                data={"userId": str(user.id)},
            )
        if "email" in changes:
            await _move_invitation(work, user, clean.email)
    return await User.get(id=user_id)


async def _move_invitation(work: UnitOfWork, user: User, address: str) -> None:
    pending = (
        await Invitation.filter(
            user_id=user.id, kind=InvitationKind.LICENSE, status=InvitationStatus.PENDING
        )
        .using_db(work.connection)
        .first()
    )
    if pending is None:
        return
    await Invitation.filter(id=pending.id).using_db(work.connection).update(email=address)
    # A new token: the link sent to the old address stops working.
    rotated = await rotate_token(work, pending)
    await email_invitation(work, rotated, kind=EmailKind.INVITATION_RESENT)


async def _create_inactive(actor: Principal, clean: _Clean, *, clock: Clock) -> User:
    """A provider's user created inactive: on record, DISABLED, no licence,
    no invitation (an invitation is sent when it becomes active)."""
    async with unit_of_work(clock.now()) as work:
        try:
            user = await User.create(
                account_id=actor.account_id,
                email=clean.email,
                email_key=clean.email_key,
                first_name=clean.first_name,
                last_name=clean.last_name,
                sort_name=sort_name(clean.first_name, clean.last_name),
                role=Role.MEMBER,
                qualification=clean.qualification,
                status=UserStatus.DISABLED,
                created_at=work.now,
                external_id=clean.external_id,
                scim_user_name=clean.user_name,
                scim_user_name_key=clean.user_name_key,
                using_db=work.connection,
            )
        except IntegrityError:
            raise _taken() from None
        await work.audit(
            actor=actor,
            action=AuditAction.USER_UPDATED,
            target_user_id=user.id,
            data={"before": None, "after": {"email": clean.email, "status": "DISABLED"}},
        )
        await work.webhook(
            account_id=actor.account_id,
            event_type=WebhookEventType.USER_UPDATED,
            data={"userId": str(user.id)},
        )
        return await reload_user(work, user.id)
