"""The read side: what the API shows, scoped to the principal's account.

Typed async functions, keyword-only, the acting principal explicit, no GraphQL
concepts. Three groups:

- role rules for reads (pure functions);
- page and detail reads (`list_users`, `get_user`, `list_charges`, ...), with
  keyset pagination: a cursor carries the sort key of the last row and its id,
  never an offset, so a page costs the same at row 10 and at row 100,000;
- batch loaders: ONE statement for a list of keys, results in key order, for
  the per-request DataLoaders of the API layer.

Cursors are URL-safe base64 of the sort key values plus an HMAC tag derived
from the server's secret key: a cursor that was not issued by this service (or
was issued for another list or order) is refused with INVALID_INPUT on the
`after` input rather than silently starting somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any, Generic, TypeVar

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count

from domain import config
from domain.enums import ActorKind, Role, UserOrder, UserStatus
from domain.errors import DomainError, ErrorCode
from domain.models import (
    Account,
    ApiToken,
    AuditEvent,
    Charge,
    Invitation,
    LicenseAssignment,
    User,
)
from domain.principal import Principal, parse_id
from domain.validation import _has_control_characters

T = TypeVar("T")

PAGE_SIZE_MIN = 1
PAGE_SIZE_MAX = 200
SEARCH_MAX = 320

# ---------------------------------------------------------------------------
# Role rules for reads


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


# ---------------------------------------------------------------------------
# Licence summary


@dataclass(frozen=True, slots=True)
class LicenseSummary:
    total: int
    in_use: int
    available: int
    # None: not counted (a COUNT that grows with the account; see
    # pending_invitation_counts, and license_summary which counts).
    pending_invitations: int | None
    scheduled_total: int | None
    scheduled_at: datetime | None
    released_at_scheduled_change: int


def summarize(account: Account, *, pending_invitations: int | None) -> LicenseSummary:
    """The summary from an account row and its count of INVITED users, if
    counted (no I/O)."""
    scheduled = account.scheduled_total
    return LicenseSummary(
        total=account.seats_total,
        in_use=account.seats_in_use,
        available=max(0, account.seats_total - account.seats_in_use),
        pending_invitations=pending_invitations,
        scheduled_total=scheduled,
        scheduled_at=account.current_period_end if scheduled is not None else None,
        released_at_scheduled_change=(
            max(0, account.seats_in_use - scheduled) if scheduled is not None else 0
        ),
    )


async def license_summary(*, account: Account) -> LicenseSummary:
    """One statement: the count of INVITED users (the owner's password-set link
    does not count: the owner is ENABLED)."""
    pending = await User.filter(account_id=account.id, status=UserStatus.INVITED).count()
    return summarize(account, pending_invitations=pending)


async def license_summary_for(*, actor: Principal) -> LicenseSummary:
    """A fresh summary of the actor's account (two statements), e.g. after a change."""
    account = await Account.get(id=actor.account_id)
    return await license_summary(account=account)


# ---------------------------------------------------------------------------
# Pages


class Edge(Generic[T]):
    """A row and its cursor. The cursor (JSON, an HMAC, base64) is built when
    first read: a page whose cursors nobody asks for does not pay for them."""

    __slots__ = ("_cursor", "_position", "node")

    def __init__(self, node: T, position: tuple[str, str | None, int]) -> None:
        self.node = node
        self._position = position  # encode_cursor's arguments
        self._cursor: str | None = None

    @property
    def cursor(self) -> str:
        if self._cursor is None:
            self._cursor = encode_cursor(*self._position)
        return self._cursor


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    edges: list[Edge[T]]
    has_next_page: bool
    # None: not counted (users: see count_users).
    total_count: int | None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else None


def _cursor_key() -> bytes:
    return _derived_cursor_key(config.current().secret_key)


@lru_cache(maxsize=4)
def _derived_cursor_key(secret_key: bytes) -> bytes:
    return hmac.new(secret_key, b"pagination-cursor", hashlib.sha256).digest()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(kind: str, value: str | None, row_id: int) -> str:
    """`kind` names the list and its order; `value` is the sort key (None: id only)."""
    payload = json.dumps([kind, value, row_id], separators=(",", ":")).encode("utf-8")
    tag = hmac.new(_cursor_key(), payload, hashlib.sha256).digest()[:12]
    return f"{_b64encode(payload)}.{_b64encode(tag)}"


def _bad_cursor() -> DomainError:
    return DomainError(
        ErrorCode.INVALID_INPUT,
        "`after` is not a cursor of this list; pass the endCursor of the previous page.",
        field="after",
    )


def decode_cursor(cursor: str, *, kind: str) -> tuple[str | None, int]:
    """Return (sort value, id) of a cursor issued for `kind`, or refuse it."""
    if len(cursor) > 1000 or cursor.count(".") != 1:
        raise _bad_cursor()
    payload_text, tag_text = cursor.split(".")
    try:
        payload = _b64decode(payload_text)
        tag = _b64decode(tag_text)
    except (binascii.Error, ValueError):
        raise _bad_cursor() from None
    expected = hmac.new(_cursor_key(), payload, hashlib.sha256).digest()[:12]
    if not hmac.compare_digest(tag, expected):
        raise _bad_cursor()
    try:
        decoded = json.loads(payload)
    except ValueError:
        raise _bad_cursor() from None
    if not (isinstance(decoded, list) and len(decoded) == 3 and decoded[0] == kind):
        raise _bad_cursor()
    _, value, row_id = decoded
    if not (isinstance(value, str | None) and type(row_id) is int and row_id > 0):
        raise _bad_cursor()
    return value, row_id


def _check_first(first: int) -> None:
    if not PAGE_SIZE_MIN <= first <= PAGE_SIZE_MAX:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"`first` must be between {PAGE_SIZE_MIN} and {PAGE_SIZE_MAX}.",
            field="first",
        )


def _datetime_key(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _bad_cursor() from None
    if parsed.tzinfo is None:
        raise _bad_cursor()
    return parsed.astimezone(UTC)


# ---------------------------------------------------------------------------
# Users


@dataclass(frozen=True, slots=True)
class _Phase:
    """One index range scan: rows matching `where`, ordered by (column, id)."""

    where: str
    column: str | None  # None: the rows of this phase all have a NULL key; order by id
    descending: bool


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


@cache
def _user_columns() -> str:
    # Read once Tortoise is initialised (foreign-key columns are known only then).
    columns = User._meta.db_fields
    assert "account_id" in columns, "Tortoise is not initialised"
    return ", ".join(sorted(columns))


class _Sql:
    """Parameter placeholders for the connection's dialect ($n or ?)."""

    def __init__(self, client: BaseDBAsyncClient) -> None:
        self.client = client
        self.postgres = client.capabilities.dialect == "postgres"
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}" if self.postgres else "?"

    def like(self, expression: str, pattern: str) -> str:
        # PostgreSQL's LIKE escapes with a backslash by default; SQLite needs it said.
        escape = "" if self.postgres else " ESCAPE '\\'"
        return f"{expression} LIKE {self.param(pattern)}{escape}"


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _user_filters(
    sql: _Sql,
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
        operator = "<>" if has_license else "="
        where.append(f"status {operator} {sql.param(UserStatus.DISABLED.value)}")
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


def _user_sort_value(user: User, order: UserOrder) -> str | None:
    if order in (UserOrder.NAME_ASC, UserOrder.NAME_DESC):
        return user.sort_name
    if order in (UserOrder.CREATED_ASC, UserOrder.CREATED_DESC):
        return user.created_at.astimezone(UTC).isoformat()
    if user.last_active_at is None:
        return None
    return user.last_active_at.astimezone(UTC).isoformat()


def _user_key_param(order: UserOrder, value: str) -> object:
    if order in (UserOrder.NAME_ASC, UserOrder.NAME_DESC):
        return value
    return _datetime_key(value)


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
    client = connections.get("default")
    sql = _Sql(client)
    where = _user_filters(sql, **filters)
    rows = await client.execute_query_dict(
        f"SELECT COUNT(*) AS n FROM users WHERE {' AND '.join(where)}",  # noqa: S608
        sql.params,
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
) -> Page[User]:
    """One page of the account's users: one (LAST_ACTIVE: at most two) index
    range scans of first+1 rows, whatever the size of the account. Not
    counted (total_count None): see count_users."""
    require_admin_read(actor)
    _check_first(first)
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
            raise _bad_cursor()
        start = matching[0]

    client = connections.get("default")
    wanted = first + 1
    users: list[User] = []
    for index in range(start, len(phases)):
        phase = phases[index]
        sql = _Sql(client)
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
        rows = await client.execute_query_dict(
            f"SELECT {_user_columns()} FROM users WHERE {' AND '.join(where)} "  # noqa: S608
            f"ORDER BY {order_by} LIMIT {int(wanted - len(users))}",
            sql.params,
        )
        users.extend(User._init_from_db(**row) for row in rows)
        if len(users) >= wanted:
            break

    edges = [Edge(user, (kind, _user_sort_value(user, order), user.id)) for user in users[:first]]
    return Page(edges=edges, has_next_page=len(users) > first, total_count=None)


async def get_user(*, actor: Principal, user_id: str) -> User | None:
    """The account's user with this id; None for an unknown, foreign or malformed id."""
    require_admin_read(actor)
    try:
        key = parse_id(user_id)
    except DomainError:
        return None
    return await User.get_or_none(id=key, account_id=actor.account_id)


# ---------------------------------------------------------------------------
# Charges, audit log, API tokens (newest first, keyset on id)


async def list_charges(*, actor: Principal, first: int, after: str | None) -> Page[Charge]:
    require_admin_read(actor)
    _check_first(first)
    kind = "charges"
    query = Charge.filter(account_id=actor.account_id)
    total_count = await query.count()
    if after is not None:
        query = query.filter(id__lt=decode_cursor(after, kind=kind)[1])
    rows = await query.order_by("-id").limit(first + 1)
    return _id_page(rows, first=first, kind=kind, total_count=total_count)


async def list_audit_events(*, actor: Principal, first: int, after: str | None) -> Page[AuditEvent]:
    require_admin_read(actor)
    _check_first(first)
    kind = "audit"
    query = AuditEvent.filter(account_id=actor.account_id)
    total_count = await query.count()
    if after is not None:
        query = query.filter(id__lt=decode_cursor(after, kind=kind)[1])
    rows = await query.order_by("-id").limit(first + 1)
    return _id_page(rows, first=first, kind=kind, total_count=total_count)


_Row = TypeVar("_Row", Charge, AuditEvent)


def _id_page(rows: list[_Row], *, first: int, kind: str, total_count: int) -> Page[_Row]:
    edges = [Edge(row, (kind, None, row.id)) for row in rows[:first]]
    return Page(edges=edges, has_next_page=len(rows) > first, total_count=total_count)


async def list_api_tokens(*, actor: Principal) -> list[ApiToken]:
    """Every API token of the account, revoked ones included, newest first."""
    require_admin_read(actor)
    return await ApiToken.filter(account_id=actor.account_id).order_by("-id")


# ---------------------------------------------------------------------------
# Batch loaders: one statement each, results in key order, scoped to the account


async def accounts_by_ids(*, account_ids: Sequence[int]) -> list[Account | None]:
    found = {a.id: a for a in await Account.filter(id__in=list(set(account_ids)))}
    return [found.get(key) for key in account_ids]


async def pending_invitation_counts(*, account_ids: Sequence[int]) -> list[int]:
    """INVITED users per account (the `pendingInvitations` of the summary)."""
    rows = (
        await User.filter(account_id__in=list(set(account_ids)), status=UserStatus.INVITED)
        .group_by("account_id")
        .annotate(n=Count("id"))
        .values_list("account_id", "n")
    )
    counts: dict[int, int] = {int(account_id): int(n) for account_id, n in rows}
    return [counts.get(key, 0) for key in account_ids]


async def users_by_ids(*, account_id: int, ids: Sequence[int]) -> list[User | None]:
    found = {u.id: u for u in await User.filter(account_id=account_id, id__in=list(set(ids)))}
    return [found.get(key) for key in ids]


async def owner_by_account_ids(*, account_id: int, keys: Sequence[int]) -> list[User | None]:
    """The OWNER of each account key; only `account_id` itself is ever answered."""
    owner = await User.get_or_none(account_id=account_id, role=Role.OWNER)
    return [owner if key == account_id else None for key in keys]


async def latest_invitation_by_user_ids(
    *, account_id: int, user_ids: Sequence[int]
) -> list[Invitation | None]:
    """The latest invitation (highest id) of each user; a resend rotates the same row."""
    latest: dict[int, Invitation] = {}
    rows = await Invitation.filter(account_id=account_id, user_id__in=list(set(user_ids)))
    for invitation in rows:
        current = latest.get(invitation.user_id)
        if current is None or invitation.id > current.id:
            latest[invitation.user_id] = invitation
    return [latest.get(key) for key in user_ids]


async def assignments_by_user_ids(
    *, account_id: int, user_ids: Sequence[int]
) -> list[list[LicenseAssignment]]:
    """Every licence assignment of each user, newest first."""
    by_user: dict[int, list[LicenseAssignment]] = {key: [] for key in user_ids}
    rows = await LicenseAssignment.filter(
        account_id=account_id, user_id__in=list(set(user_ids))
    ).order_by("-assigned_at", "-id")
    for assignment in rows:
        by_user[assignment.user_id].append(assignment)
    return [by_user[key] for key in user_ids]


async def api_tokens_by_ids(*, account_id: int, ids: Sequence[int]) -> list[ApiToken | None]:
    found = {t.id: t for t in await ApiToken.filter(account_id=account_id, id__in=list(set(ids)))}
    return [found.get(key) for key in ids]


__all__ = [
    "PAGE_SIZE_MAX",
    "PAGE_SIZE_MIN",
    "Edge",
    "LicenseSummary",
    "Page",
    "accounts_by_ids",
    "api_tokens_by_ids",
    "assignments_by_user_ids",
    "can_read_account_details",
    "can_read_private",
    "count_users",
    "decode_cursor",
    "encode_cursor",
    "get_user",
    "latest_invitation_by_user_ids",
    "license_summary",
    "license_summary_for",
    "list_api_tokens",
    "list_audit_events",
    "list_charges",
    "list_users",
    "owner_by_account_ids",
    "pending_invitation_counts",
    "require_admin_read",
    "summarize",
    "users_by_ids",
]
