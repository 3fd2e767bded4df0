"""Which roles a user may be given by an invitation or an edit."""

from domain.enums import Role
from domain.errors import DomainError, ErrorCode

# OWNER moves only through transferOwnership, which demotes and promotes in
# one transaction: anything else would make a second owner or none.
ASSIGNABLE_ROLES: tuple[Role, ...] = (Role.ADMIN, Role.MEMBER)


def require_assignable_role(role: Role, *, current: Role | None = None) -> None:
    """Refuse making a user OWNER, or changing the role of the owner."""
    if role not in ASSIGNABLE_ROLES or current == Role.OWNER:
        raise DomainError(
            ErrorCode.OWNER_ROLE_IMMUTABLE,
            "The OWNER role moves only through transferOwnership.",
            field="role",
        )
