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


def latest_invitation_join(*, postgres: bool) -> str:
    """Each user (of a table aliased `u`) joined to its latest invitation, as
    `i` (NULLs when it has none): the highest id, as a resend rotates the
    token of the same row.

    Two texts, one meaning, each the form its backend answers with an index
    lookup per user: PostgreSQL hashes the whole invitations table for the
    scalar-subquery form (EXPLAIN ANALYZE), and SQLite has no LATERAL."""
    if postgres:
        return (
            f"LEFT JOIN LATERAL (SELECT {INVITATION_COLUMNS} FROM invitations "  # noqa: S608
            "WHERE account_id = u.account_id AND user_id = u.id "
            "ORDER BY id DESC LIMIT 1) AS i ON true"
        )
    return (
        "LEFT JOIN invitations AS i ON i.id = (SELECT max(j.id) FROM invitations AS j "
        "WHERE j.account_id = u.account_id AND j.user_id = u.id)"
    )


def qualified(columns: str, alias: str) -> str:
    """`columns` (one of the lists above) read from the table aliased `alias`."""
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


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


_USER_WIDTH = len(UserRow._fields)
_INVITATION_WIDTH = len(InvitationRow._fields)


def user_rows(rows: Sequence[Sequence[Any]]) -> list[UserRow]:
    """Rows of USER_COLUMNS, in that order."""
    return [_user(row) for row in rows]


def user_invitation_rows(
    rows: Sequence[Sequence[Any]],
) -> list[tuple[UserRow, InvitationRow | None]]:
    """Rows of USER_COLUMNS then INVITATION_COLUMNS (all NULL: no invitation)."""
    at = _USER_WIDTH
    return [(_user(row), None if row[at] is None else _invitation(row, at)) for row in rows]


def invitation_rows(rows: Sequence[Sequence[Any]]) -> list[InvitationRow]:
    """Rows of INVITATION_COLUMNS, in that order."""
    return [_invitation(row, 0) for row in rows]


def _user(row: Sequence[Any]) -> UserRow:
    return _new(
        UserRow,
        (*row[:6], _ROLES[row[6]], row[7], _USER_STATUSES[row[8]], row[9], row[10]),
    )


def _invitation(row: Sequence[Any], start: int) -> InvitationRow:
    """The invitation whose INVITATION_COLUMNS begin at `start`."""
    return _new(
        InvitationRow,
        (
            row[start],
            row[start + 1],
            _INVITATION_STATUSES[row[start + 2]],
            *row[start + 3 : start + _INVITATION_WIDTH],
        ),
    )
