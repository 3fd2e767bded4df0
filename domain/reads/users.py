"""The users page: filters, orders, keyset pagination and its count; one user."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from tortoise import connections

from domain.enums import Role, UserOrder, UserStatus
from domain.errors import DomainError, ErrorCode
from domain.models import User
from domain.principal import Principal, parse_id
from domain.reads.access import require_admin_read
from domain.reads.cursors import bad_cursor, datetime_key, decode_cursor
from domain.reads.pages import Edge, Page, check_first
from domain.reads.rows import (
    INVITATION_COLUMNS,
    USER_COLUMNS,
    InvitationRow,
    UserRow,
    latest_invitation_join,
    qualified,
    user_invitation_rows,
    user_rows,
)
from domain.rules.seats import LICENSED_STATUSES
from domain.sql import Statement
from domain.validation import _has_control_characters

SEARCH_MAX = 320


@dataclass(frozen=True, slots=True)
class _Phase:
    """One index range scan: rows matching `where`, ordered by (column, id)."""

    where: str
    column: str | None  # None: the rows of this phase all have a NULL key; order by id
    descending: bool


@dataclass(frozen=True, slots=True)
class UsersPage(Page[UserRow]):
    # Each user's latest invitation (None: it has none), by user id, when asked.
    latest_invitations: dict[int, InvitationRow | None] | None = None


# A page's users (aliased u, as read by the inner statement) and their latest invitations.
_PAGE_COLUMNS = f"{qualified(USER_COLUMNS, 'u')}, {qualified(INVITATION_COLUMNS, 'i')}"

_NAME = "sort_name"
_CREATED = "created_at"
_ACTIVE = "last_active_at"

# LAST_ACTIVE: "never active" first in ASC and last in DESC, on every backend.
# SQLite and PostgreSQL place NULLs differently, so the NULL rows are a phase
# of their own (each phase an index range on (account_id, last_active_at, id)).
_PHASES: dict[UserOrder, tuple[_Phase, ...]] = {
    UserOrder.NAME_ASC: (_Phase("", _NAME, False),),
    UserOrder.NAME_DESC: (_Phase("", _NAME, True),),
    UserOrder.CREATED_ASC: (_Phase("", _CREATED, False),),
    UserOrder.CREATED_DESC: (_Phase("", _CREATED, True),),
    UserOrder.LAST_ACTIVE_ASC: (
        _Phase(f"{_ACTIVE} IS NULL", None, False),
        _Phase(f"{_ACTIVE} IS NOT NULL", _ACTIVE, False),
    ),
    UserOrder.LAST_ACTIVE_DESC: (
        _Phase(f"{_ACTIVE} IS NOT NULL", _ACTIVE, True),
        _Phase(f"{_ACTIVE} IS NULL", None, True),
    ),
}


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _user_filters(
    sql: Statement,
    *,
    account_id: int,
    status: UserStatus | None,
    role: Role | None,
    has_license: bool | None,
    search: str | None,
) -> list[str]:
    where = [f"account_id = {sql.param(account_id)}"]
    if status is not None:
        where.append(f"status = {sql.param(status.value)}")
    if role is not None:
        where.append(f"role = {sql.param(role.value)}")
    if has_license is not None:
        licensed = ", ".join(sql.param(held.value) for held in LICENSED_STATUSES)
        operator = "IN" if has_license else "NOT IN"
        where.append(f"status {operator} ({licensed})")
    if search:
        pattern = f"%{escape_like(search.lower())}%"
        any_field = " OR ".join(
            sql.like(f"lower({column})", pattern) for column in ("first_name", "last_name", "email")
        )
        if sql.postgres:
            # Narrowed by the trigram index on this very expression (migration
            # 0002); the per-field test keeps the meaning exact.
            combined = sql.like("lower(first_name || ' ' || last_name || ' ' || email)", pattern)
            where.append(f"{combined} AND ({any_field})")
        else:
            where.append(f"({any_field})")
    return where


def _user_sort_value(order: UserOrder) -> Callable[[UserRow], str | None]:
    """The cursor's sort value of a row in `order` (chosen once per page)."""
    if order in (UserOrder.NAME_ASC, UserOrder.NAME_DESC):
        return _sort_name
    if order in (UserOrder.CREATED_ASC, UserOrder.CREATED_DESC):
        return _created_key
    return _last_active_key


def _sort_name(user: UserRow) -> str:
    return user.sort_name


def _created_key(user: UserRow) -> str:
    return user.created_at.astimezone(UTC).isoformat()


def _last_active_key(user: UserRow) -> str | None:
    if user.last_active_at is None:
        return None
    return user.last_active_at.astimezone(UTC).isoformat()


def _user_key_param(order: UserOrder, value: str) -> object:
    if order in (UserOrder.NAME_ASC, UserOrder.NAME_DESC):
        return value
    return datetime_key(value)


def _clean_search(search: str | None) -> str | None:
    if search is None:
        return None
    text = search.strip()
    if len(text) > SEARCH_MAX:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"Search at most {SEARCH_MAX} characters.",
            field="search",
        )
    # No stored name or email holds one (and PostgreSQL refuses NUL in text).
    if _has_control_characters(text):
        raise DomainError(
            ErrorCode.INVALID_INPUT, "Search must not contain control characters.", field="search"
        )
    return text or None


def _user_query(
    *,
    actor: Principal,
    status: UserStatus | None,
    role: Role | None,
    has_license: bool | None,
    search: str | None,
) -> dict[str, Any]:
    """The checked filter of a users list (shared by the page and its count)."""
    require_admin_read(actor)
    return {
        "account_id": actor.account_id,
        "status": status,
        "role": role,
        "has_license": has_license,
        "search": _clean_search(search),
    }


async def count_users(
    *,
    actor: Principal,
    status: UserStatus | None = None,
    role: Role | None = None,
    has_license: bool | None = None,
    search: str | None = None,
) -> int:
    """How many users match the filter: one COUNT, which reads every matching
    index entry (its cost grows with the account; ask for it only when shown)."""
    filters = _user_query(
        actor=actor, status=status, role=role, has_license=has_license, search=search
    )
    sql = Statement(connections.get("default"))
    where = _user_filters(sql, **filters)
    rows = await sql.fetch(
        f"SELECT COUNT(*) AS n FROM users WHERE {' AND '.join(where)}"  # noqa: S608
    )
    return int(rows[0]["n"])


async def list_users(
    *,
    actor: Principal,
    first: int,
    after: str | None,
    status: UserStatus | None = None,
    role: Role | None = None,
    has_license: bool | None = None,
    search: str | None = None,
    order: UserOrder = UserOrder.NAME_ASC,
    latest_invitations: bool = False,
) -> UsersPage:
    """One page of the account's users: one (LAST_ACTIVE: at most two) index
    range scans of first+1 rows, whatever the size of the account, read as
    plain values (domain.reads.rows). Not counted (total_count None): see
    count_users. With `latest_invitations`, the same statement reads each
    user's latest invitation too."""
    require_admin_read(actor)
    check_first(first)
    kind = f"users:{order.value}"
    cursor = decode_cursor(after, kind=kind) if after is not None else None
    filters = _user_query(
        actor=actor, status=status, role=role, has_license=has_license, search=search
    )
    phases = _PHASES[order]
    start = 0
    if cursor is not None:
        value = cursor[0]
        matching = [i for i, p in enumerate(phases) if (p.column is None) == (value is None)]
        if not matching:
            raise bad_cursor()
        start = matching[0]

    client = connections.get("default")
    wanted = first + 1
    users: list[UserRow] = []
    invitations: dict[int, InvitationRow | None] = {}
    for index in range(start, len(phases)):
        phase = phases[index]
        sql = Statement(client)
        where = _user_filters(sql, **filters)
        if phase.where:
            where.append(phase.where)
        comparison = "<" if phase.descending else ">"
        if cursor is not None and index == start:
            value, row_id = cursor
            if phase.column is None:
                where.append(f"id {comparison} {sql.param(row_id)}")
            else:
                assert value is not None
                key = sql.param(_user_key_param(order, value))
                where.append(f"({phase.column}, id) {comparison} ({key}, {sql.param(row_id)})")
        direction = "DESC" if phase.descending else "ASC"
        order_by = f"id {direction}"
        if phase.column is not None:
            order_by = f"{phase.column} {direction}, {order_by}"
        text = (
            f"SELECT {USER_COLUMNS} FROM users WHERE {' AND '.join(where)} "  # noqa: S608
            f"ORDER BY {order_by} LIMIT {int(wanted - len(users))}"
        )
        if not latest_invitations:
            users.extend(user_rows(await sql.rows(text)))
        else:
            outer_order = f"u.id {direction}"
            if phase.column is not None:
                outer_order = f"u.{phase.column} {direction}, {outer_order}"
            text = (
                f"SELECT {_PAGE_COLUMNS} FROM ({text}) AS u "  # noqa: S608 - placeholders only
                f"{latest_invitation_join(postgres=sql.postgres)} ORDER BY {outer_order}"
            )
            for user, invitation in user_invitation_rows(await sql.rows(text)):
                users.append(user)
                invitations[user.id] = invitation
        if len(users) >= wanted:
            break

    sort_value = _user_sort_value(order)
    edges = [Edge(user, (kind, sort_value(user), user.id)) for user in users[:first]]
    return UsersPage(
        edges=edges,
        has_next_page=len(users) > first,
        total_count=None,
        latest_invitations=invitations if latest_invitations else None,
    )


async def get_user(*, actor: Principal, user_id: str) -> User | None:
    """The account's user with this id; None for an unknown, foreign or malformed id."""
    require_admin_read(actor)
    try:
        key = parse_id(user_id)
    except DomainError:
        return None
    return await User.get_or_none(id=key, account_id=actor.account_id)
