"""The test database: which backend this run uses, the domain's test key, and emptying
PostgreSQL between tests (tests/conftest.py builds the fixtures on these)."""

from __future__ import annotations

import os

from tortoise import Tortoise, connections

from domain.db import init_database

# TEST_DATABASE_URL unset: SQLite; postgres://…: that database.
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL") or None
# The domain's secret key in every test, and in the processes tests start.
TEST_SECRET_KEY = b"test-secret-key-0123456789abcdef"


async def reset_postgres(url: str) -> None:
    """Drop every table (and anything else) of the public schema."""
    await init_database(url)
    try:
        await connections.get("default").execute_script(
            "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
        )
    finally:
        await Tortoise.close_connections()


async def truncate_postgres() -> None:
    """Empty every table but the migration tool's (Tortoise must be initialised)."""
    client = connections.get("default")
    _, rows = await client.execute_query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename NOT LIKE 'tortoise%'"
    )
    tables = ", ".join(f'"{row["tablename"]}"' for row in rows)
    await client.execute_script(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
