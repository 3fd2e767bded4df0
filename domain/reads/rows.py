"""Users and invitations as plain values, read with hand-written SELECTs.

The users page shows 100 users and their latest invitations per request.
Building a Tortoise model for each row (a field-by-field conversion, an
object with its own bookkeeping) cost about as much as the rest of the read,
so the page names its columns and turns each row into a small frozen
dataclass. The attribute names are the models' own, so a `UserRow` or an
`InvitationRow` stands wherever the GraphQL layer reads a model's fields.

Both drivers hand over date-times already converted (asyncpg natively;
SQLite through `domain.sqlite_backend`'s TIMESTAMP converter), always with
their UTC offset, as the models read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.enums import InvitationStatus, Role, UserStatus
from domain.models import display_name
from domain.rules.seats import holds_license

# Enum members by stored value: a dict look-up costs a fraction of Enum(value).
_ROLES = {member.value: member for member in Role}
_USER_STATUSES = {member.value: member for member in UserStatus}
_INVITATION_STATUSES = {member.value: member for member in InvitationStatus}

USER_COLUMNS = (
    "id, account_id, email, first_name, last_name, sort_name, role, qualification, "
    "status, created_at, last_active_at"
)
INVITATION_COLUMNS = (
    "id, user_id, status, email, created_at, sent_at, expires_at, accepted_at, "
    "revoked_at, delivery_attempts, last_delivery_error"
)


@dataclass(frozen=True, slots=True)
class UserRow:
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


@dataclass(frozen=True, slots=True)
class InvitationRow:
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
    return [
        UserRow(
            id=row[0],
            account_id=row[1],
            email=row[2],
            first_name=row[3],
            last_name=row[4],
            sort_name=row[5],
            role=_ROLES[row[6]],
            qualification=row[7],
            status=_USER_STATUSES[row[8]],
            created_at=row[9],
            last_active_at=row[10],
        )
        for row in rows
    ]


def invitation_rows(rows: Sequence[Sequence[Any]]) -> list[InvitationRow]:
    """Rows of INVITATION_COLUMNS, in that order."""
    return [
        InvitationRow(
            id=row[0],
            user_id=row[1],
            status=_INVITATION_STATUSES[row[2]],
            email=row[3],
            created_at=row[4],
            sent_at=row[5],
            expires_at=row[6],
            accepted_at=row[7],
            revoked_at=row[8],
            delivery_attempts=row[9],
            last_delivery_error=row[10],
        )
        for row in rows
    ]
