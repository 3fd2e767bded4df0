"""Table tests of the role rule: OWNER is never given or taken by an edit or an invitation."""

import pytest

from domain.enums import Role
from domain.errors import DomainError, ErrorCode
from domain.rules.roles import require_assignable_role

# (requested role, the user's current role or None for a new user, allowed)
ROLE_CASES = [
    pytest.param(Role.MEMBER, None, True, id="invite-member"),
    pytest.param(Role.ADMIN, None, True, id="invite-admin"),
    pytest.param(Role.OWNER, None, False, id="invite-owner"),
    pytest.param(Role.ADMIN, Role.MEMBER, True, id="promote-member"),
    pytest.param(Role.MEMBER, Role.ADMIN, True, id="demote-admin"),
    pytest.param(Role.MEMBER, Role.MEMBER, True, id="same-role"),
    pytest.param(Role.OWNER, Role.ADMIN, False, id="make-owner"),
    pytest.param(Role.ADMIN, Role.OWNER, False, id="change-the-owner"),
    pytest.param(Role.OWNER, Role.OWNER, False, id="owner-to-owner"),
]


@pytest.mark.parametrize(("role", "current", "allowed"), ROLE_CASES)
def test_require_assignable_role(role: Role, current: Role | None, allowed: bool) -> None:
    if allowed:
        require_assignable_role(role, current=current)
        return
    with pytest.raises(DomainError) as refused:
        require_assignable_role(role, current=current)
    assert (refused.value.code, refused.value.field) == (ErrorCode.OWNER_ROLE_IMMUTABLE, "role")
