"""Who is acting: a signed-in user, an API token, or the system's own jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from domain.enums import ActorKind, ApiTokenScope, Role
from domain.errors import DomainError, ErrorCode

if TYPE_CHECKING:
    from domain.models import User


# A set built once: reading an enum member through its class costs a
# descriptor call, and the users page asks this once per user.
_ADMIN_ROLES = frozenset({Role.OWNER, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: int
    kind: ActorKind
    # API tokens act with ADMIN rights; the system acts with OWNER rights.
    role: Role
    user_id: int | None = None
    token_id: int | None = None
    session_id: int | None = None
    # The interfaces it may use: a session, GraphQL; an API token, its scopes.
    scopes: frozenset[ApiTokenScope] = frozenset({ApiTokenScope.GRAPHQL})

    @classmethod
    def system(cls, account_id: int) -> Principal:
        return cls(account_id=account_id, kind=ActorKind.SYSTEM, role=Role.OWNER)

    @classmethod
    def of_user(cls, user: User, *, session_id: int | None = None) -> Principal:
        """The user acting for itself, with the role its row holds now."""
        return cls(
            account_id=user.account_id,
            kind=ActorKind.USER,
            role=user.role,
            user_id=user.id,
            session_id=session_id,
        )

    @property
    def acting_user_id(self) -> int | None:
        """The user to record as the actor (rows keep user and token apart)."""
        return self.user_id if self.kind == ActorKind.USER else None

    @property
    def acting_token_id(self) -> int | None:
        """The API token to record as the actor."""
        return self.token_id if self.kind == ActorKind.API_TOKEN else None

    @property
    def is_admin(self) -> bool:
        return self.role in _ADMIN_ROLES

    @property
    def idempotency_scope(self) -> str:
        if self.kind == ActorKind.API_TOKEN:
            return f"token:{self.token_id}"
        return f"user:{self.user_id}"


def require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise DomainError(ErrorCode.FORBIDDEN, "This needs the ADMIN or OWNER role.")


def require_scope(actor: Principal, scope: ApiTokenScope) -> None:
    if scope not in actor.scopes:
        raise DomainError(ErrorCode.FORBIDDEN, f"This API token has no {scope.value} scope.")


MAX_ID = 2**31 - 1


def parse_id(raw: str | int, *, what: str = "user") -> int:
    """Turn a client-supplied ID into a key; anything malformed is simply not found."""
    text = str(raw).strip()
    # Keys are 32-bit integers; anything beyond cannot exist (and would make
    # PostgreSQL raise instead of finding nothing).
    if not text.isascii() or not text.isdigit() or len(text) > 10 or int(text) > MAX_ID:
        raise DomainError(ErrorCode.NOT_FOUND, f"No {what} with this ID.")
    return int(text)
