"""Which database failures mean "down or busy, retry later" rather than a fault.

SPEC section 6 answers those with 503 and SERVICE_UNAVAILABLE on every
interface; everything else stays an unexpected error. The drivers raise them
unwrapped (asyncpg's connection errors, OSError from a refused socket) or
wrapped by Tortoise (OperationalError around sqlite3's "database is locked"),
so the whole cause chain is inspected.
"""

from __future__ import annotations

import errno
import socket
import sqlite3

import asyncpg
from tortoise.exceptions import DBConnectionError

from domain.errors import DependencyUnavailable

# sqlite3 reports a busy file only through the message text.
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
# asyncpg's InterfaceError also covers misuse (a bug); only these mean a lost server.
_ASYNCPG_GONE = ("connection is closed", "pool is closed", "connection was closed")
_NETWORK_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})
_POSTGRES_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: connection exceptions
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections
    # Protocol state broken by a server that went away mid-exchange ("cannot
    # switch to state 12; another operation is in progress"), seen while
    # PostgreSQL shut down under load; the pool replaces the connection.
    asyncpg.exceptions.InternalClientError,
)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _unavailable_one(exc: BaseException) -> bool:
    if isinstance(exc, (DependencyUnavailable, DBConnectionError, *_POSTGRES_UNAVAILABLE)):
        return True
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return any(text in str(exc) for text in _SQLITE_BUSY)
    if isinstance(exc, asyncpg.InterfaceError):
        return any(text in str(exc) for text in _ASYNCPG_GONE)
    return False


def database_unavailable(exc: BaseException) -> DependencyUnavailable | None:
    """The failure as a DependencyUnavailable when the database is down or busy."""
    for cause in _causes(exc):
        if isinstance(cause, DependencyUnavailable):
            return cause
        if _unavailable_one(cause):
            return DependencyUnavailable("database", str(cause) or type(cause).__name__)
    return None
