"""SQLite client whose transactions take the write lock when they begin.

SQLite's default deferred BEGIN lets two processes both read, then both try to
write, and one of them fails with "database is locked" whatever the busy
timeout. BEGIN IMMEDIATE queues writers at the start instead, so the CLI and a
running server can share one file.

Date-times: Tortoise stores them as text (`str(datetime)`, ISO 8601 with the
offset) and parses them back with the `iso8601` package, about 10 µs each,
which made reading a page of users and their invitations cost milliseconds.
This client asks sqlite3 to convert TIMESTAMP columns itself with
`datetime.fromisoformat` (a C function, well under a microsecond); a value
it cannot parse is handed over as text, as before.

Lock release: Tortoise's SqliteTransactionContext takes the connection's
lock, then begins; when BEGIN IMMEDIATE fails (another process kept the write
lock past busy_timeout) its __aexit__ never runs and the lock is never
released, so every later query of the process waits forever. The context
here releases it and reports the busy file as DependencyUnavailable.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

import aiosqlite
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.backends.sqlite.executor import SqliteExecutor
from tortoise.backends.sqlite.schema_generator import SqliteSchemaGenerator
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError

from domain.errors import DependencyUnavailable


def _timestamp(raw: bytes) -> datetime | str:
    text = raw.decode("utf-8")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text


# Converter names are global to the sqlite3 module and case-insensitive; this
# replaces the module's default "timestamp" converter (which cannot read an
# offset) for connections opened with PARSE_DECLTYPES, i.e. only this client's.
sqlite3.register_converter("TIMESTAMP", _timestamp)


class ImmediateTransactionWrapper(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise DependencyUnavailable("database", str(exc)) from exc
            raise TransactionManagementError(exc) from exc


class ReleasingTransactionContext(SqliteTransactionContext):
    async def __aenter__(self) -> TransactionalDBClient:
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            self.token = get_connections().set(self.connection_name, self.connection)
            try:
                await self.connection.begin()
            except BaseException:
                get_connections().reset(self.token)
                raise
        except BaseException:
            self._trxlock.release()
            raise
        return self.connection  # type: ignore[no-any-return]


class ImmediateSqliteClient(SqliteClient):
    executor_class = SqliteExecutor
    schema_generator = SqliteSchemaGenerator

    def __init__(self, file_path: str, **kwargs: Any) -> None:
        super().__init__(file_path, **kwargs)
        # Wait for another process's write instead of failing at once.
        self.pragmas.setdefault("busy_timeout", 15000)

    async def create_connection(self, with_db: bool) -> None:
        # SqliteClient.create_connection, with TIMESTAMP columns converted by sqlite3.
        if not self._connection:
            self._connection = await aiosqlite.connect(
                self.filename, isolation_level=None, detect_types=sqlite3.PARSE_DECLTYPES
            )
            self._connection._conn.row_factory = sqlite3.Row
            for pragma, value in self.pragmas.items():
                cursor = await self._connection.execute(f"PRAGMA {pragma}={value}")
                await cursor.close()
            await self._post_connect()

    def _in_transaction(self) -> SqliteTransactionContext:
        return ReleasingTransactionContext(ImmediateTransactionWrapper(self), self._lock)


client_class = ImmediateSqliteClient
