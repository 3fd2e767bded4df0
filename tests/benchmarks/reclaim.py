"""B10: the reclaim job over an account of 100k ENABLED users (SQLite and PostgreSQL).

The account's policy: 30 days, 7 days' notice, admins exempt. Its users, each
holding a licence (an open assignment): 80 % active in the last 20 days
(nothing due), 10 % inactive for 25 days (a notice due), 10 % inactive for 40
days and noticed 8 days ago (a release due). The job runs once, in its own
process, and must send exactly the notices and release exactly the licences
due; a second run must find nothing more to do. No target is set by the product; the
figure is users covered per second of the job, beside the time of the one
statement that finds the due users (the floor of any implementation that
reads them).
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.benchmarks.common import Figure, Options, Recorder, say
from tests.benchmarks.dataset import (
    analyze,
    asyncpg_dsn,
    create_accounts,
    is_postgres,
    migrate_database,
    sqlite_path,
)
from tests.benchmarks.tasks import run_task
from tests.support.local_services import PostgresServer

INACTIVE_DAYS = 30
NOTICE_DAYS = 7
USER_COLUMNS = (
    "account_id",
    "email",
    "email_key",
    "first_name",
    "last_name",
    "sort_name",
    "role",
    "status",
    "created_at",
    "last_active_at",
)
# The statement the job's reads stand for: the users whose notice or release
# may be due, with their open assignment and latest notice.
FLOOR_SQL = """
SELECT u.id, u.last_active_at, a.assigned_at, n.inactive_since, n.created_at
FROM users u
JOIN license_assignments a ON a.user_id = u.id AND a.unassigned_at IS NULL
LEFT JOIN reclaim_notices n ON n.id = (SELECT MAX(m.id) FROM reclaim_notices m
                                       WHERE m.user_id = u.id)
WHERE u.account_id = {p1} AND u.status = 'ENABLED' AND u.role NOT IN ('OWNER', 'ADMIN')
  AND (u.last_active_at IS NULL OR u.last_active_at <= {p2}) AND a.assigned_at <= {p2}
"""


def _kind(index: int) -> str:
    return "release" if index % 10 == 0 else "notice" if index % 10 == 1 else "active"


def _users(account_id: int, count: int, now: datetime) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(count):
        kind = _kind(i)
        days = {"release": 40, "notice": 25, "active": i % 20}[kind]
        email = f"user{i}@reclaim.example"
        rows.append(
            (
                account_id,
                email,
                email,
                "User",
                f"N{i}",
                f"user n{i}",
                "MEMBER",
                "ENABLED",
                now - timedelta(days=400),
                now - timedelta(days=days, minutes=i % 600),
            )
        )
    return rows


async def _load(url: str, count: int, now: datetime) -> int:
    (account,) = await create_accounts(url, [("Reclaim", 10)])
    rows = _users(account.account_id, count, now)
    policy = (account.account_id, True, INACTIVE_DAYS, NOTICE_DAYS, True, "[]", 1, now)
    if is_postgres(url):
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await connection.execute("SET TIME ZONE 'UTC'")
            async with connection.transaction():
                await _load_pg(connection, account.account_id, rows, policy, now)
        finally:
            await connection.close()
    else:
        db = sqlite3.connect(sqlite_path(url))
        try:
            with db:
                _load_sqlite(db, account.account_id, rows, policy, now)
        finally:
            db.close()
    return account.account_id


async def _load_pg(
    connection: Any,
    account_id: int,
    rows: list[tuple[Any, ...]],
    policy: tuple[Any, ...],
    now: datetime,
) -> None:
    await connection.copy_records_to_table("users", records=rows, columns=USER_COLUMNS)
    await connection.execute(
        "INSERT INTO license_assignments (account_id, user_id, assigned_at, assigned_by_kind) "
        "SELECT account_id, id, created_at, 'SYSTEM' FROM users "
        "WHERE account_id = $1 AND role <> 'OWNER'",
        account_id,
    )
    await connection.execute(
        "INSERT INTO reclaim_notices (account_id, user_id, inactive_since, release_at, created_at) "
        "SELECT account_id, id, last_active_at, last_active_at + interval '30 days', $2 "
        "FROM users WHERE account_id = $1 AND last_active_at < $3",
        account_id,
        now - timedelta(days=8),
        now - timedelta(days=35),
    )
    await connection.execute(
        "UPDATE accounts SET seats_total = seats_in_use + $2, seats_in_use = seats_in_use + $2 "
        "WHERE id = $1",
        account_id,
        len(rows),
    )
    await connection.execute(
        "INSERT INTO reclaim_policies (account_id, enabled, inactive_days, notice_days, "
        "exempt_admins, exempt_user_ids, version, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)",
        *policy,
    )


def _text(value: Any) -> Any:
    # Tortoise's SQLite text form of a datetime: str(datetime).
    return str(value) if isinstance(value, datetime) else value


def _load_sqlite(
    db: sqlite3.Connection,
    account_id: int,
    rows: list[tuple[Any, ...]],
    policy: tuple[Any, ...],
    now: datetime,
) -> None:
    marks = ", ".join("?" * len(USER_COLUMNS))
    db.executemany(
        f"INSERT INTO users ({', '.join(USER_COLUMNS)}) VALUES ({marks})",
        [tuple(_text(v) for v in row) for row in rows],
    )
    db.execute(
        "INSERT INTO license_assignments (account_id, user_id, assigned_at, assigned_by_kind) "
        "SELECT account_id, id, created_at, 'SYSTEM' FROM users "
        "WHERE account_id = ? AND role <> 'OWNER'",
        (account_id,),
    )
    old = db.execute(
        "SELECT id, last_active_at FROM users WHERE account_id = ? AND last_active_at < ?",
        (account_id, _text(now - timedelta(days=35))),
    ).fetchall()
    noticed = _text(now - timedelta(days=8))
    db.executemany(
        "INSERT INTO reclaim_notices (account_id, user_id, inactive_since, release_at, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (
                account_id,
                user_id,
                since,
                _text(datetime.fromisoformat(since) + timedelta(days=INACTIVE_DAYS)),
                noticed,
            )
            for user_id, since in old
        ],
    )
    db.execute(
        "UPDATE accounts SET seats_total = seats_in_use + ?, seats_in_use = seats_in_use + ? "
        "WHERE id = ?",
        (len(rows), len(rows), account_id),
    )
    db.execute(
        "INSERT INTO reclaim_policies (account_id, enabled, inactive_days, notice_days, "
        "exempt_admins, exempt_user_ids, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        tuple(_text(v) for v in policy),
    )


async def _floor_seconds(url: str, account_id: int, now: datetime) -> float:
    watch = now - timedelta(days=INACTIVE_DAYS - NOTICE_DAYS)
    if is_postgres(url):
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            started = time.perf_counter()
            await connection.fetch(FLOOR_SQL.format(p1="$1", p2="$2"), account_id, watch)
            return time.perf_counter() - started
        finally:
            await connection.close()
    db = sqlite3.connect(sqlite_path(url))
    try:
        started = time.perf_counter()
        db.execute(
            FLOOR_SQL.format(p1="?", p2="?"), (account_id, _text(watch), _text(watch))
        ).fetchall()
        return time.perf_counter() - started
    finally:
        db.close()


async def b10_reclaim(
    options: Options, recorder: Recorder, backend: str, pg: PostgresServer | None
) -> None:
    count = 10_000 if options.quick else 100_000
    if backend == "postgres":
        assert pg is not None
        url = pg.create_database("bench_b10")
    else:
        url = f"sqlite://{options.work_dir / 'bench-b10.db'}"
    say(f"B10 reclaim ({backend}): {count} ENABLED users")
    await migrate_database(url)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    account_id = await _load(url, count, now)
    await analyze(url)
    say(f"  loaded in {time.perf_counter() - t0:.1f}s")
    floor = await _floor_seconds(url, account_id, now)
    job = run_task("reclaim", url=url)
    again = run_task("reclaim", url=url)
    due = count // 10
    if (job["notices_sent"], job["licenses_released"], job["failed"]) != (due, due, 0):
        raise RuntimeError(f"B10: the job reported {job}, expected {due} notices and releases")
    if (again["notices_sent"], again["licenses_released"]) != (0, 0):
        raise RuntimeError(f"B10: a second run still found work: {again}")
    rate = count / job["seconds"]
    say(f"  job {job['seconds']:.2f}s ({rate:.0f} users/s); second run {again['seconds']:.2f}s")
    recorder.add(
        Figure(
            name=f"B10 reclaim job, {count // 1000}k users ({due} notices, {due} releases)",
            ratio=floor / job["seconds"],
            target="info",
            met=None,
            benchmark="B10",
            backend=backend,
            details={
                "users": count,
                "job_seconds": round(job["seconds"], 3),
                "second_run_seconds": round(again["seconds"], 3),
                "floor_select_seconds": round(floor, 3),
                "users_per_s": round(rate, 1),
            },
            summary=(
                f"job {job['seconds']:.2f} s ({rate:,.0f} users/s); the next run, with "
                f"{due:,} noticed users still waiting, {again['seconds']:.2f} s; the select "
                f"alone {floor:.2f} s"
            ),
        )
    )
