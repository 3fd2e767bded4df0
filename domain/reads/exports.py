"""The account's users and audit log as rows of text, for CSV exports of any size.

Who: ADMIN, OWNER and API tokens with the GRAPHQL scope (the export shows what
the GraphQL API shows them). Memory stays constant: rows are read in keyset
batches, one statement each, as plain values (no model objects; a user's
cells come out of the database as the CSV's text), and the next batch is
read while the consumer writes out the current one (two batches at most).

Consistency: each batch is its own read; no transaction or connection is held
between batches, so a long download never holds a lock or a pooled
connection.

- Users, in (createdAt, id) order, an immutable key: every user that exists
  for the whole export appears exactly once, with its values as read by its
  batch; a user created meanwhile may or may not appear.
- The audit log, oldest first, up to the newest event at the start of the
  export: the log only grows, so this is the log as it was then.

The first batch is read before the export is returned, so a refusal or a
database that is down is known before anything is sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import connections

from domain.clock import Clock
from domain.enums import ApiTokenScope, Role, UserStatus
from domain.models import display_name
from domain.principal import Principal, require_scope
from domain.reads.access import require_admin_read
from domain.rules.csv_text import Cell
from domain.rules.seats import LICENSED_STATUSES
from domain.sql import Statement

EXPORT_BATCH_SIZE = 2000

Row = Sequence[Cell]

USER_COLUMNS = (
    "id",
    "email",
    "firstName",
    "lastName",
    "role",
    "isOwner",
    "status",
    "hasLicense",
    "qualification",
    "createdAt",
    "lastActiveAt",
    "licenseAssignedAt",
)
AUDIT_COLUMNS = (
    "id",
    "createdAt",
    "action",
    "actorKind",
    "actor.id",
    "actor.email",
    "actor.name",
    "actorToken.id",
    "actorToken.name",
    "target.id",
    "target.email",
    "target.name",
    "data",
)


@dataclass(frozen=True)
class Export:
    filename: str
    header: tuple[str, ...]
    # Batches of rows, each row in the order of `header`; close it if not read to the end.
    batches: AsyncGenerator[list[Row], None]


async def export_users(
    *,
    actor: Principal,
    clock: Clock,
    status: UserStatus | None = None,
    batch_size: int = EXPORT_BATCH_SIZE,
) -> Export:
    """Every user of the actor's account (or those with `status`), oldest first."""
    _require_export(actor, batch_size)
    batches = _user_batches(actor.account_id, status, batch_size)
    return await _primed(_filename("users", actor, clock), USER_COLUMNS, batches)


async def export_audit_events(
    *, actor: Principal, clock: Clock, batch_size: int = EXPORT_BATCH_SIZE
) -> Export:
    """The actor's account's audit log up to now, oldest first."""
    _require_export(actor, batch_size)
    batches = _audit_batches(actor.account_id, batch_size)
    return await _primed(_filename("audit", actor, clock), AUDIT_COLUMNS, batches)


def _require_export(actor: Principal, batch_size: int) -> None:
    require_admin_read(actor)
    require_scope(actor, ApiTokenScope.GRAPHQL)
    if batch_size < 1:
        raise ValueError("batch_size must be positive")


def _filename(kind: str, actor: Principal, clock: Clock) -> str:
    return f"{kind}-account-{actor.account_id}-{clock.now().astimezone(UTC).date()}.csv"


async def _primed(
    filename: str, header: tuple[str, ...], batches: AsyncGenerator[list[Row], None]
) -> Export:
    first = await anext(batches, None)

    async def chained() -> AsyncGenerator[list[Row], None]:
        # The next batch is read while the consumer writes this one out: the
        # database's time overlaps the CSV's, and at most two batches are held.
        pending: asyncio.Task[list[Row] | None] | None = None
        try:
            batch = first
            while batch is not None:
                pending = asyncio.ensure_future(anext(batches, None))
                yield batch
                batch = await pending
                pending = None
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.wait([pending])
                if not pending.cancelled():
                    pending.exception()  # retrieved: the export ends here anyway
            await batches.aclose()

    return Export(filename=filename, header=header, batches=chained())


# --- users -------------------------------------------------------------------


def _time_column(expression: str, postgres: bool) -> str:
    """The column as text in the API's DateTime form, written by the database.

    Formatting on the database server keeps this process's CPU for the CSV (a
    datetime per cell costs microseconds in Python). PostgreSQL writes what
    datetime.isoformat() writes for a UTC time: the fraction only when there
    is one. SQLite holds Tortoise's `str(datetime)`, the ISO form with a space
    for the "T"; one stored with an offset other than UTC's is converted by
    _time (see _times_final). NULL stays NULL.
    """
    if postgres:
        utc = f"({expression} AT TIME ZONE 'UTC')"
        fraction = (
            f"CASE WHEN CAST(date_part('microseconds', {expression}) AS integer) % 1000000 = 0 "
            f"THEN '' ELSE to_char({utc}, '.US') END"
        )
        return f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS') || {fraction} || '+00:00'"""
    return f"replace({expression}, ' ', 'T')"


def _times_final(expressions: tuple[str, ...], postgres: bool) -> str:
    """1 when every time of the row came out in its final form (see _time_column)."""
    if postgres:
        return "1"
    utc = " AND ".join(f"({e} IS NULL OR substr({e}, -6) = '+00:00')" for e in expressions)
    return f"CASE WHEN {utc} THEN 1 ELSE 0 END"


_USER_TIMES = ("u.created_at", "u.last_active_at", "a.assigned_at")
_USER_CELLS = 12  # the columns of USER_COLUMNS, in order; then the keyset's


def _user_select(sql: Statement) -> str:
    """Every cell as the CSV's text: one statement, no per-row work here."""
    owner = sql.param(Role.OWNER.value)
    licensed = ", ".join(sql.param(held.value) for held in LICENSED_STATUSES)
    times = ", ".join(_time_column(column, sql.postgres) for column in _USER_TIMES)
    # The keyset: the stored text on SQLite (what it compares), the time on PostgreSQL.
    created_key = "u.created_at" if sql.postgres else "CAST(u.created_at AS TEXT)"
    return (
        "SELECT CAST(u.id AS TEXT), u.email, u.first_name, u.last_name, u.role, "  # noqa: S608
        f"CASE WHEN u.role = {owner} THEN 'true' ELSE 'false' END, u.status, "
        f"CASE WHEN u.status IN ({licensed}) THEN 'true' ELSE 'false' END, "
        f"u.qualification, {times}, {_times_final(_USER_TIMES, sql.postgres)}, "
        f"{created_key}, u.id "
        "FROM users u "
        # At most one open assignment per user (a partial unique index).
        "LEFT JOIN license_assignments a ON a.user_id = u.id AND a.unassigned_at IS NULL"
    )


async def _user_batches(
    account_id: int, status: UserStatus | None, size: int
) -> AsyncGenerator[list[Row], None]:
    after: tuple[Any, int] | None = None
    while True:
        sql = Statement(connections.get("default"))
        select = _user_select(sql)
        where = [f"u.account_id = {sql.param(account_id)}"]
        if status is not None:
            where.append(f"u.status = {sql.param(status.value)}")
        if after is not None:
            created, row_id = after
            where.append(f"(u.created_at, u.id) > ({sql.param(created)}, {sql.param(row_id)})")
        rows = await sql.rows(
            f"{select} WHERE {' AND '.join(where)} ORDER BY u.created_at, u.id LIMIT {int(size)}"
        )
        if rows:
            yield [
                row[:_USER_CELLS] if row[_USER_CELLS] else _user_times_converted(row)
                for row in rows
            ]
        if len(rows) < size:
            return
        last = rows[-1]
        after = (last[_USER_CELLS + 1], last[_USER_CELLS + 2])


def _user_times_converted(row: Sequence[Any]) -> Row:
    cells = list(row[:_USER_CELLS])
    for index in range(_USER_CELLS - len(_USER_TIMES), _USER_CELLS):
        cells[index] = _time(cells[index])
    return cells


# --- audit log ---------------------------------------------------------------


def _audit_select(postgres: bool) -> str:
    return (
        f"SELECT e.id, {_time_column('e.created_at', postgres)}, e.action, e.actor_kind, "  # noqa: S608
        "e.actor_user_id, actor.email, actor.first_name, actor.last_name, "
        "e.actor_token_id, token.name, "
        "e.target_user_id, target.email, target.first_name, target.last_name, e.data "
        "FROM audit_events e "
        "LEFT JOIN users actor ON actor.id = e.actor_user_id "
        "LEFT JOIN api_tokens token ON token.id = e.actor_token_id "
        "LEFT JOIN users target ON target.id = e.target_user_id"
    )


async def _audit_batches(account_id: int, size: int) -> AsyncGenerator[list[Row], None]:
    client = connections.get("default")
    newest = Statement(client)
    found = await newest.rows(
        f"SELECT MAX(id) FROM audit_events WHERE account_id = {newest.param(account_id)}"  # noqa: S608
    )
    last_id = found[0][0]
    if last_id is None:
        return
    after = 0
    while True:
        sql = Statement(client)
        rows = await sql.rows(
            f"{_audit_select(sql.postgres)} WHERE e.account_id = {sql.param(account_id)} "
            f"AND e.id > {sql.param(after)} AND e.id <= {sql.param(last_id)} "
            f"ORDER BY e.id LIMIT {int(size)}"
        )
        if rows:
            yield [_audit_row(row) for row in rows]
        if len(rows) < size:
            return
        after = rows[-1][0]


def _audit_row(row: Sequence[Any]) -> Row:
    (
        event_id,
        created_at,
        action,
        actor_kind,
        actor_id,
        actor_email,
        actor_first,
        actor_last,
        token_id,
        token_name,
        target_id,
        target_email,
        target_first,
        target_last,
        data,
    ) = row
    return [
        str(event_id),
        _time(created_at),
        action,
        actor_kind,
        _id(actor_id),
        actor_email,
        _name(actor_first, actor_last),
        _id(token_id),
        token_name,
        _id(target_id),
        target_email,
        _name(target_first, target_last),
        _json(data),
    ]


# --- values as text ------------------------------------------------------------


def _time(value: datetime | str | None) -> str | None:
    """ISO 8601 in UTC, as the API's DateTime, from what _time_column gave:
    final text, or (SQLite, a time stored with another offset) text to convert."""
    if value is None:
        return None
    if isinstance(value, str):
        if value[10:11] == "T" and value.endswith("+00:00"):
            return value
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).isoformat()


def _id(value: int | None) -> str | None:
    return None if value is None else str(value)


def _name(first: str | None, last: str | None) -> str | None:
    return None if first is None or last is None else display_name(first, last)


def _json(value: Any) -> str | None:
    """Compact JSON with sorted keys, the same text from either backend."""
    if value is None:
        return None
    data = json.loads(value) if isinstance(value, str | bytes) else value
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
