"""Hand-written SQL: the connection's dialect, and parameters written for it.

Tortoise writes most statements. The few written by hand (set-based paths,
keyset reads) meet two differences between the backends: PostgreSQL numbers
its parameters ($1, $2, ...) where SQLite takes `?`, and only PostgreSQL's
LIKE escapes with a backslash unless told. This is the one place that knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

POSTGRES = "postgres"
SQLITE = "sqlite"


def dialect(client: BaseDBAsyncClient | None = None) -> str:
    """The dialect of `client`, or of the default connection."""
    return str((client or connections.get("default")).capabilities.dialect)


def is_postgres(client: BaseDBAsyncClient | None = None) -> bool:
    return dialect(client) == POSTGRES


class Statement:
    """One statement's parameters: `param` appends a value and returns its placeholder.

    Placeholders come out in the order they are written, so an f-string can
    place them inline: f"... WHERE id = {sql.param(key)}".
    """

    def __init__(self, client: BaseDBAsyncClient) -> None:
        self.client = client
        self.postgres = is_postgres(client)
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}" if self.postgres else "?"

    def like(self, expression: str, pattern: str) -> str:
        """`expression LIKE pattern`, a backslash escaping % and _ on both backends."""
        escape = "" if self.postgres else " ESCAPE '\\'"
        return f"{expression} LIKE {self.param(pattern)}{escape}"

    async def fetch(self, text: str) -> list[dict[str, Any]]:
        return list(await self.client.execute_query_dict(text, self.params))

    async def rows(self, text: str) -> Sequence[Sequence[Any]]:
        """The rows as the driver gives them (indexable by column position):
        no dict per row, for reads that name their columns."""
        _, rows = await self.client.execute_query(text, self.params)
        # Typed as dicts by Tortoise; asyncpg's Record and sqlite3.Row index
        # by position too.
        return cast("Sequence[Sequence[Any]]", rows)

    async def execute(self, text: str) -> None:
        await self.client.execute_query(text, self.params)
