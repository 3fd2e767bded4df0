"""Who is acting: a signed-in user, an API token, or the system's own jobs."""

from __future__ import annotations

from dataclasses import dataclass

from domain.enums import ActorKind, Role
from domain.errors import DomainError, ErrorCode


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: int
    kind: ActorKind
    # API tokens act with ADMIN rights; the system acts with OWNER rights.
    role: Role
    user_id: int | None = None
    token_id: int | None = None
    session_id: int | None = None

    @classmethod
    def system(cls, account_id: int) -> Principal:
        return cls(account_id=account_id, kind=ActorKind.SYSTEM, role=Role.OWNER)

    @property
    def is_admin(self) -> bool:
        return self.role in (Role.OWNER, Role.ADMIN)

    @property
    def idempotency_scope(self) -> str:
        if self.kind == ActorKind.API_TOKEN:
            return f"token:{self.token_id}"
        return f"user:{self.user_id}"


def require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise DomainError(ErrorCode.FORBIDDEN, "This needs the ADMIN or OWNER role.")


MAX_ID = 2**31 - 1


def parse_id(raw: str | int, *, what: str = "user") -> int:
    """Turn a client-supplied ID into a key; anything malformed is simply not found."""
    text = str(raw).strip()
    # Keys are 32-bit integers; anything beyond cannot exist (and would make
    # PostgreSQL raise instead of finding nothing).
    if not text.isascii() or not text.isdigit() or len(text) > 10 or int(text) > MAX_ID:
        raise DomainError(ErrorCode.NOT_FOUND, f"No {what} with this ID.")
    return int(text)
