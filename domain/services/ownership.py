"""Handing the account's ownership to another ENABLED user of the account.

Exactly one owner at every instant: in one transaction the current owner is
demoted first, then the target promoted, both with conditional UPDATEs. The
partial unique index `users_one_owner` forbids a second owner outright; a
transfer that loses a race finds the actor no longer owner (0 rows) or hits
that index, and is refused with FORBIDDEN, changing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from domain.clock import Clock
from domain.emails import ownership_transferred_notices
from domain.enums import ActorKind, AuditAction, Role, UserStatus, WebhookEventType
from domain.errors import DomainError, ErrorCode
from domain.models import User
from domain.principal import Principal, parse_id
from domain.rules.roles import ASSIGNABLE_ROLES
from domain.services.licensing import end_sessions
from domain.uow import unit_of_work


@dataclass(frozen=True)
class OwnershipOutcome:
    previous_owner: User
    new_owner: User


def _not_owner() -> DomainError:
    return DomainError(ErrorCode.FORBIDDEN, "Only the account owner can transfer ownership.")


async def transfer_ownership(*, actor: Principal, user_id: str, clock: Clock) -> OwnershipOutcome:
    """The target becomes OWNER, the actor ADMIN (signed out everywhere); both are emailed."""
    # FORBIDDEN before NOT_FOUND: the contract groups them, and the actor's
    # role is known without looking anything up, so a non-owner learns
    # nothing about which ids exist. API tokens and the system never own.
    if actor.kind != ActorKind.USER or actor.role != Role.OWNER or actor.user_id is None:
        raise _not_owner()
    target_id = parse_id(user_id)
    now = clock.now()
    try:
        async with unit_of_work(now) as work:
            # The principal may be stale (ownership moved since it was built).
            still_owner = (
                await User.filter(id=actor.user_id, account_id=actor.account_id, role=Role.OWNER)
                .using_db(work.connection)
                .exists()
            )
            if not still_owner:
                raise _not_owner()
            target = (
                await User.filter(id=target_id, account_id=actor.account_id)
                .using_db(work.connection)
                .first()
            )
            if target is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No user with this ID.")
            if target.status != UserStatus.ENABLED:
                raise DomainError(
                    ErrorCode.TARGET_NOT_ELIGIBLE,
                    "Ownership can move only to an ENABLED user of the account.",
                )
            if target.role == Role.OWNER:
                raise DomainError(ErrorCode.ALREADY_OWNER, "This user already owns the account.")

            demoted = (
                await User.filter(id=actor.user_id, account_id=actor.account_id, role=Role.OWNER)
                .using_db(work.connection)
                .update(role=Role.ADMIN)
            )
            if demoted != 1:
                # Someone else transferred first.
                raise _not_owner()
            promoted = (
                await User.filter(
                    id=target.id,
                    account_id=actor.account_id,
                    status=UserStatus.ENABLED,
                    role__in=ASSIGNABLE_ROLES,
                )
                .using_db(work.connection)
                .update(role=Role.OWNER)
            )
            if promoted != 1:
                # Released or disabled meanwhile; the demotion is rolled back.
                raise DomainError(
                    ErrorCode.TARGET_NOT_ELIGIBLE,
                    "Ownership can move only to an ENABLED user of the account.",
                )
            await end_sessions(work, user_id=actor.user_id)
            await work.audit(
                actor=actor,
                action=AuditAction.OWNERSHIP_TRANSFERRED,
                target_user_id=target.id,
                data={
                    "previousOwnerId": actor.user_id,
                    "newOwnerId": target.id,
                    "newOwnerPreviousRole": Role(target.role).value,
                },
            )
            await work.webhook(
                account_id=actor.account_id,
                event_type=WebhookEventType.OWNERSHIP_TRANSFERRED,
                data={"previousOwnerId": str(actor.user_id), "newOwnerId": str(target.id)},
            )
            for notice in ownership_transferred_notices(
                account_id=actor.account_id, previous_owner_id=actor.user_id, new_owner_id=target.id
            ):
                await work.email(account_id=actor.account_id, payload=notice)
            previous_owner = await User.get(id=actor.user_id, using_db=work.connection)
            new_owner = await User.get(id=target.id, using_db=work.connection)
    except IntegrityError as exc:
        # users_one_owner: another transfer made an owner first.
        raise _not_owner() from exc
    return OwnershipOutcome(previous_owner=previous_owner, new_owner=new_owner)
