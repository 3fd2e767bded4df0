"""Editing a user: names, qualification and role."""

from __future__ import annotations

from typing import Any

from domain.clock import Clock
from domain.enums import AuditAction, Role, WebhookEventType
from domain.errors import DomainError, ErrorCode
from domain.models import User
from domain.principal import Principal, parse_id
from domain.rules.roles import require_assignable_role
from domain.services.account_lock import find_user, reload_user
from domain.uow import unit_of_work
from domain.validation import clean_name, clean_qualification, sort_name

# Model field -> the contract's name, in the audit event's before/after.
_AUDIT_NAMES = {
    "first_name": "firstName",
    "last_name": "lastName",
    "role": "role",
    "qualification": "qualification",
}


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
    async with unit_of_work(clock.now()) as work:
        # No licence moves: the user's row is the only lock (see account_lock).
        user = await find_user(work, actor=actor, user_id=key, lock=True)
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
            require_assignable_role(role, current=user.role)
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
        await work.webhook(
            account_id=actor.account_id,
            event_type=WebhookEventType.USER_UPDATED,
            data={"userId": str(user.id)},
        )
        user = await reload_user(work, user.id)
    return user


def _plain(value: object) -> object:
    return value.value if isinstance(value, Role) else value
