"""Databases for the benchmarks: migrated, accounts created through the
services, users bulk-loaded with the driver (COPY on PostgreSQL, executemany
on SQLite), never through the services.

Bulk-loaded users look like a working account: 90 % ENABLED (with an
ACCEPTED invitation and a last-active time), 5 % INVITED (a PENDING
invitation), 5 % DISABLED (a REVOKED one); one in ten is an ADMIN; names are
drawn from small lists, so the NAME order interleaves them. The account's
seat counter matches its licensed users. Licence assignments are not loaded
(no benchmarked read touches them).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.benchmarks.tasks import run_task


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Ada Alan Alice Amir Ana Ben Bea Carl Chen Chloe Dan Dora Eli Emma Eva Finn Gia Hana "
    "Hugo Ida Ines Ivan Jon Juno Kai Kim Lars Lea Leo Lina Luca Maya Mia Nia Noah Nora "
    "Omar Otto Pia Raj Rosa Sam Sara Tao Tom Uma Vera Wim Yara Zoe "
)
LAST_NAMES = _words(
    "Abe Baker Berg Brown Chan Clark Costa Cruz Diaz Dubois Evans Fox Garcia Gray Green "
    "Hall Hansen Ito Jansen Jones Kato Khan Kim Klein Koch Lang Lee Lopez Meyer Moreau "
    "Muller Nagy Novak Olsen Ortiz Park Patel Perez Quinn Reyes Rossi Ruiz Sato Schmidt "
    "Silva Singh Smith Sousa Suzuki Tanaka Taylor Torres Vogel Wagner Walsh Wang Weber "
    "White Wilson Wolf Wong Young Zhang Ziegler Abbott Baldwin Castro Dalton Ellis "
    "Fischer Gomez Holt Ibsen Jensen Keller Larsen Marsh Nolan Owens Pratt Rahman Shaw "
    "Stone Tran Ueda Vance Ward Yates Zane Adler Boyd Crane Drake Ford Grant Hart Irwin "
)

USER_COLUMNS = (
    "account_id",
    "email",
    "email_key",
    "first_name",
    "last_name",
    "sort_name",
    "role",
    "qualification",
    "status",
    "password_hash",
    "created_at",
    "last_active_at",
)
INVITATION_COLUMNS = (
    "account_id",
    "user_id",
    "kind",
    "email",
    "token_version",
    "token_hash",
    "status",
    "invited_by_user_id",
    "created_at",
    "sent_at",
    "expires_at",
    "accepted_at",
    "revoked_at",
    "delivery_attempts",
    "last_delivery_error",
)
STATUS_OF = {"ENABLED": "ACCEPTED", "INVITED": "PENDING", "DISABLED": "REVOKED"}


@dataclass(frozen=True)
class SeededAccount:
    account_id: int
    api_token: str
    owner_user_id: int
    users: int  # including the owner


def is_postgres(url: str) -> bool:
    return url.startswith("postgres")


def asyncpg_dsn(url: str) -> str:
    """Tortoise's postgres://… URL without its pool parameters."""
    return url.split("?", 1)[0]


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite://").split("?", 1)[0]


async def migrate_database(url: str) -> None:
    run_task("migrate", url=url)


async def create_accounts(
    url: str, specs: list[tuple[str, int]], *, period_end: datetime | None = None
) -> list[SeededAccount]:
    """Accounts through the accounts service (in a child process): (name, seats) each."""
    created = run_task(
        "accounts",
        url=url,
        specs=[list(spec) for spec in specs],
        period_end=period_end.isoformat() if period_end else None,
    )
    return [SeededAccount(users=1, **row) for row in created]


def _user_rows(account_id: int, count: int, now: datetime) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(count):
        first = FIRST_NAMES[i % len(FIRST_NAMES)]
        last = LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)]
        email = f"{first}.{last}.{i}@a{account_id}.example"
        status = "INVITED" if i % 20 == 0 else "DISABLED" if i % 20 == 1 else "ENABLED"
        created = now - timedelta(days=400) + timedelta(seconds=i * 7)
        active = now - timedelta(minutes=i % 5000) if status == "ENABLED" else None
        rows.append(
            (
                account_id,
                email,
                email.lower(),
                first,
                last,
                f"{first} {last}".casefold(),
                "ADMIN" if i % 10 == 3 else "MEMBER",
                f"Certified level {i % 4}" if i % 3 == 0 else None,
                status,
                None,
                created,
                active,
            )
        )
    return rows


def _invitation_rows(
    account_id: int, users: list[tuple[int, str, str]], owner_id: int, now: datetime
) -> list[tuple[Any, ...]]:
    rows = []
    for user_id, email, status in users:
        created = now - timedelta(days=2)
        invitation_status = STATUS_OF[status]
        rows.append(
            (
                account_id,
                user_id,
                "LICENSE",
                email,
                1,
                hashlib.sha256(f"bench-invitation-{user_id}".encode()).hexdigest(),
                invitation_status,
                owner_id,
                created,
                created,
                created + timedelta(days=7),
                created + timedelta(hours=1) if invitation_status == "ACCEPTED" else None,
                created + timedelta(hours=1) if invitation_status == "REVOKED" else None,
                1,
                None,
            )
        )
    return rows


async def bulk_users(url: str, account: SeededAccount, count: int) -> SeededAccount:
    """Add `count` users (and their invitations) to the account; fix its seat counter."""
    now = datetime.now(UTC)
    rows = _user_rows(account.account_id, count, now)
    licensed = sum(1 for row in rows if row[8] != "DISABLED")
    if is_postgres(url):
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            async with connection.transaction():
                await connection.copy_records_to_table("users", records=rows, columns=USER_COLUMNS)
                users = await connection.fetch(
                    "SELECT id, email, status FROM users WHERE account_id = $1 AND id <> $2",
                    account.account_id,
                    account.owner_user_id,
                )
                invitations = _invitation_rows(
                    account.account_id,
                    [(u["id"], u["email"], u["status"]) for u in users],
                    account.owner_user_id,
                    now,
                )
                await connection.copy_records_to_table(
                    "invitations", records=invitations, columns=INVITATION_COLUMNS
                )
                await connection.execute(
                    "UPDATE accounts SET seats_total = GREATEST(seats_total, seats_in_use + $2), "
                    "seats_in_use = seats_in_use + $2 WHERE id = $1",
                    account.account_id,
                    licensed,
                )
        finally:
            await connection.close()
    else:
        connection_sq = sqlite3.connect(sqlite_path(url))
        try:
            with connection_sq:
                text_rows = [_sqlite_row(row) for row in rows]
                marks = ", ".join("?" * len(USER_COLUMNS))
                connection_sq.executemany(
                    f"INSERT INTO users ({', '.join(USER_COLUMNS)}) VALUES ({marks})",
                    text_rows,
                )
                users_sq = connection_sq.execute(
                    "SELECT id, email, status FROM users WHERE account_id = ? AND id <> ?",
                    (account.account_id, account.owner_user_id),
                ).fetchall()
                invitations = _invitation_rows(
                    account.account_id, users_sq, account.owner_user_id, now
                )
                marks = ", ".join("?" * len(INVITATION_COLUMNS))
                connection_sq.executemany(
                    f"INSERT INTO invitations ({', '.join(INVITATION_COLUMNS)}) VALUES ({marks})",
                    [_sqlite_row(row) for row in invitations],
                )
                connection_sq.execute(
                    "UPDATE accounts SET seats_total = MAX(seats_total, seats_in_use + ?), "
                    "seats_in_use = seats_in_use + ? WHERE id = ?",
                    (licensed, licensed, account.account_id),
                )
        finally:
            connection_sq.close()
    return SeededAccount(
        account_id=account.account_id,
        api_token=account.api_token,
        owner_user_id=account.owner_user_id,
        users=account.users + count,
    )


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # Tortoise stores SQLite datetimes as str(datetime): "2026-11-28 20:06:44.772860+00:00".
    return tuple(str(value) if isinstance(value, datetime) else value for value in row)


async def analyze(url: str) -> float:
    """Fresh planner statistics (and, on PostgreSQL, the visibility map)."""
    started = time.perf_counter()
    if is_postgres(url):
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await connection.execute("VACUUM ANALYZE")
        finally:
            await connection.close()
    else:
        connection_sq = sqlite3.connect(sqlite_path(url))
        try:
            connection_sq.execute("ANALYZE")
        finally:
            connection_sq.close()
    return time.perf_counter() - started


async def fetch_one(url: str, sql_pg: str, sql_sqlite: str, *params: Any) -> tuple[Any, ...]:
    """One row of a check query (the harness's own connection, not the server's)."""
    if is_postgres(url):
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            row = await connection.fetchrow(sql_pg, *params)
        finally:
            await connection.close()
        return tuple(row) if row is not None else ()
    connection_sq = sqlite3.connect(sqlite_path(url), timeout=30)
    try:
        found = connection_sq.execute(sql_sqlite, params).fetchone()
    finally:
        connection_sq.close()
    return tuple(found) if found is not None else ()
