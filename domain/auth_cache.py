"""Recognising a bearer token without a database round trip, revoked at once.

`authenticate` keeps the principal of each recently seen token hash in
process memory. An entry is served only while a *change feed* says that
nothing which could end it has been committed since it was read:

- SQLite: `PRAGMA data_version` on a connection of its own (a few µs, no
  round trip). It changes whenever any other connection of any process
  commits to the file, so every commit, whoever made it, empties the cache.
- PostgreSQL: a connection LISTENing on `auth_changes`. Triggers
  (migration 0006) notify it, in the committing transaction, whenever a
  session or an API token changes or is deleted, or a user's status, role
  or account changes: whatever process, service or hand-written statement
  made the change. A ping sent through that same connection every few
  seconds proves it still hears; without a recent echo, or while
  reconnecting, the feed is not healthy and every request reads the
  database as before.

The process's own commits (every unit of work, `logout`) also empty its
cache at once, before their response leaves, without waiting for a feed.

Race: a request that read the database before a change but would store
its answer after the change arrived stores nothing (the generation it
started with is stale). Entries also expire after `ttl` seconds, a bound
for anything the feeds could miss. docs/security.md describes the
guarantee; docs/decisions.md why it was chosen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tortoise.backends.base.config_generator import expand_db_url

from domain.principal import Principal

log = logging.getLogger(__name__)

CHANNEL = "auth_changes"
DEFAULT_TTL_SECONDS = 30.0
DEFAULT_MAX_ENTRIES = 10_000
# (the feed's generation, this process's commits)
Generation = tuple[int, int]


class ChangeFeed(Protocol):
    def generation(self) -> int | None:
        """Changes whenever an authentication-relevant commit may have
        happened; None while the feed cannot vouch (serve nothing cached)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(slots=True)
class CachedPrincipal:
    principal: Principal
    # A session's expiry (None: an API token, which does not expire).
    expires_at: datetime | None
    # last_active_at / last_used_at as last known: stamping stays throttled.
    stamped: datetime | None
    stored_at: float


class PrincipalCache:
    """Token hash -> principal, valid for one generation of its feed."""

    def __init__(
        self,
        feed: ChangeFeed,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self.feed = feed
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, CachedPrincipal] = {}
        self._generation: Generation | None = None
        # Commits of this process: known at once, before any feed reports them.
        self._local_changes = 0

    def generation(self) -> Generation | None:
        """The feed's generation now; entries of an older one are dropped."""
        fed = self.feed.generation()
        current = None if fed is None else (fed, self._local_changes)
        if current is None or current != self._generation:
            self._entries.clear()
            self._generation = current
        return current

    def changed(self) -> None:
        self._local_changes += 1

    def get(self, hashed: str, now: datetime) -> CachedPrincipal | None:
        if self.generation() is None:
            return None
        entry = self._entries.get(hashed)
        if entry is None:
            return None
        expired = entry.expires_at is not None and entry.expires_at <= now
        if expired or time.monotonic() - entry.stored_at > self.ttl:
            del self._entries[hashed]
            return None
        return entry

    def put(
        self,
        hashed: str,
        principal: Principal,
        *,
        generation: Generation | None,
        expires_at: datetime | None,
        stamped: datetime | None,
    ) -> None:
        """Store what was read under `generation` (as returned before the
        read), unless a change arrived meanwhile."""
        if generation is None or self.generation() != generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[hashed] = CachedPrincipal(
            principal, expires_at, stamped, stored_at=time.monotonic()
        )

    def clear(self) -> None:
        self._entries.clear()


# ---------------------------------------------------------------------------
# Feeds


class SqliteDataVersion:
    """SQLite: the file's data_version, read on a connection that never writes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    async def start(self) -> None:
        # timeout=0: the probe runs on the event loop and must never wait.
        self._connection = sqlite3.connect(
            self.path, timeout=0, isolation_level=None, check_same_thread=False
        )

    async def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def generation(self) -> int | None:
        if self._connection is None:
            return None
        try:
            row = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            return None
        return int(row[0])


class PostgresNotifications:
    """PostgreSQL: LISTEN auth_changes on a dedicated connection, with a ping."""

    def __init__(
        self,
        credentials: dict[str, Any],
        *,
        ping_seconds: float = 2.0,
        silence_seconds: float = 6.0,
    ) -> None:
        self.credentials = credentials
        self.ping_seconds = ping_seconds
        self.silence_seconds = silence_seconds
        self._changes = 0
        self._connection: Any = None
        self._heard_at = 0.0
        self._nonce = secrets.token_hex(8)
        self._task: asyncio.Task[None] | None = None

    def generation(self) -> int | None:
        connection = self._connection
        if connection is None or connection.is_closed():
            return None
        if time.monotonic() - self._heard_at > self.silence_seconds:
            return None
        return self._changes

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="auth-change-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._listen()
                delay = 0.5
                while not self._connection.is_closed():
                    await asyncio.wait_for(
                        self._connection.execute(
                            "SELECT pg_notify($1, $2)", CHANNEL, f"ping:{self._nonce}"
                        ),
                        self.silence_seconds,
                    )
                    await asyncio.sleep(self.ping_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("auth change feed lost; reading every token from the database")
            self._changes += 1
            await self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _listen(self) -> None:
        import asyncpg  # noqa: PLC0415 - PostgreSQL deployments only

        credentials = self.credentials
        self._connection = await asyncpg.connect(
            host=credentials.get("host"),
            port=int(credentials.get("port") or 5432),
            user=credentials.get("user"),
            password=credentials.get("password") or None,
            database=credentials.get("database"),
            timeout=5,
        )
        await self._connection.add_listener(CHANNEL, self._heard)

    def _heard(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload == f"ping:{self._nonce}":
            self._heard_at = time.monotonic()
        elif not payload.startswith("ping:"):
            self._changes += 1

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        self._heard_at = 0.0
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)


def feed_for(database_url: str) -> ChangeFeed | None:
    """The change feed of this database; None where none can vouch (in-memory SQLite)."""
    config = expand_db_url(database_url)
    credentials: dict[str, Any] = config["credentials"]
    if database_url.startswith("sqlite"):
        path = str(credentials.get("file_path", ""))
        return None if not path or path == ":memory:" else SqliteDataVersion(path)
    return PostgresNotifications(credentials)


@asynccontextmanager
async def principal_cache(database_url: str) -> AsyncIterator[PrincipalCache | None]:
    """The API process's cache, in use by `authenticate` while the block runs."""
    feed = feed_for(database_url)
    if feed is None:
        yield None
        return
    await feed.start()
    cache = PrincipalCache(feed)
    use(cache)
    try:
        yield cache
    finally:
        use(None)
        await feed.stop()


_in_use: PrincipalCache | None = None


def use(cache: PrincipalCache | None) -> None:
    """The cache `authenticate` consults (None: every request reads the database)."""
    global _in_use  # noqa: PLW0603 - wiring done at process start
    _in_use = cache


def in_use() -> PrincipalCache | None:
    return _in_use


def changed() -> None:
    """This process committed a change: drop what it cached (at once, in process)."""
    if _in_use is not None:
        _in_use.changed()
