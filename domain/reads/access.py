"""Who may read what: the role rules of the read side."""

from __future__ import annotations

from domain.enums import ActorKind
from domain.errors import DomainError, ErrorCode
from domain.principal import Principal


def can_read_account_details(actor: Principal) -> bool:
    """Licences, billing, users, charges, audit log, API tokens: ADMIN, OWNER, API token."""
    return actor.is_admin


def can_read_private(actor: Principal, user_id: int) -> bool:
    """Status, qualification, licence, invitation, history and times of a user.

    ADMIN, OWNER and API tokens read them for every user of the account; a
    MEMBER only for itself.
    """
    return actor.is_admin or (actor.kind == ActorKind.USER and actor.user_id == user_id)


def require_admin_read(actor: Principal) -> None:
    if not can_read_account_details(actor):
        raise DomainError(ErrorCode.FORBIDDEN, "Reading this needs the ADMIN or OWNER role.")
