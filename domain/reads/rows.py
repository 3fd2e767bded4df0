"""Users and invitations as plain values, read with hand-written SELECTs.

The users page shows 100 users and their latest invitations per request.
Building a Tortoise model for each row (a field-by-field conversion, an
object with its own bookkeeping) cost about as much as the rest of the read,
so the page names its columns and turns each row into a named tuple, built
by `tuple.__new__` from the row's values (a frozen dataclass's `__init__`,
setting each field through `object.__setattr__`, cost seven times as much).
The attribute names are the models' own, so a `UserRow` or an
`InvitationRow` stands wherever the GraphQL layer reads a model's fields.

Both drivers hand over date-times already converted (asyncpg natively;
SQLite through `domain.sqlite_backend`'s TIMESTAMP converter), always with
their UTC offset, as the models read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from domain.enums import InvitationStatus, Role, UserStatus
from domain.models import display_name
from domain.rules.seats import holds_license

# Enum members by stored value: a dict look-up costs a fraction of Enum(value).
_ROLES = {member.value: member for member in Role}
_USER_STATUSES = {member.value: member for member in UserStatus}
_INVITATION_STATUSES = {member.value: member for member in InvitationStatus}
# A named tuple from its values in field order, without its Python-level __new__.
_new = tuple.__new__

USER_COLUMNS = (
    "id, account_id, email, first_name, last_name, sort_name, role, qualification, "
    "status, created_at, last_active_at"
)
INVITATION_COLUMNS = (
    "id, user_id, status, email, created_at, sent_at, expires_at, accepted_at, "
    "revoked_at, delivery_attempts, last_delivery_error"
)


class UserRow(NamedTuple):
    id: int
    account_id: int
    email: str
    first_name: str
    last_name: str
    sort_name: str
    role: Role
    qualification: str | None
    status: UserStatus
    created_at: datetime
    last_active_at: datetime | None

    @property
    def name(self) -> str:
        return display_name(self.first_name, self.last_name)

    @property
    def holds_license(self) -> bool:
        return holds_license(self.status)


class InvitationRow(NamedTuple):
    id: int
    user_id: int
    status: InvitationStatus
    email: str
    created_at: datetime
    sent_at: datetime | None
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    delivery_attempts: int
    last_delivery_error: str | None


def user_rows(rows: Sequence[Sequence[Any]]) -> list[UserRow]:
    """Rows of USER_COLUMNS, in that order."""
    roles, statuses = _ROLES, _USER_STATUSES
    return [
        _new(UserRow, (*row[:6], roles[row[6]], row[7], statuses[row[8]], row[9], row[10]))
        for row in rows
    ]


def invitation_rows(rows: Sequence[Sequence[Any]]) -> list[InvitationRow]:
    """Rows of INVITATION_COLUMNS, in that order."""
    statuses = _INVITATION_STATUSES
    return [_new(InvitationRow, (row[0], row[1], statuses[row[2]], *row[3:11])) for row in rows]
