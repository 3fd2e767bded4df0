"""Constraints Tortoise's CreateModel does not emit, added in their own step."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import CheckConstraint

PARTIAL_UNIQUE_INDEXES = [
    # Exactly one owner: at most one here, at least one because ownership
    # moves in one transaction (demote, then promote).
    "CREATE UNIQUE INDEX users_one_owner ON users (account_id) WHERE role = 'OWNER'",
    "CREATE UNIQUE INDEX license_assignments_one_open ON license_assignments (user_id) "
    "WHERE unassigned_at IS NULL",
    "CREATE UNIQUE INDEX charges_one_renewal ON charges (account_id, period_start) "
    "WHERE kind = 'RENEWAL'",
    "CREATE INDEX outbox_messages_undelivered ON outbox_messages (available_at) "
    "WHERE sent_at IS NULL AND failed_at IS NULL",
]


async def add_search_index(apps: object, schema_editor: object) -> None:
    # Substring search on names and email: a trigram index on PostgreSQL. SQLite
    # has no equivalent and scans the account's rows (fine for embedded sizes).
    client = schema_editor.client  # type: ignore[attr-defined]
    if client.capabilities.dialect != "postgres":
        return
    await client.execute_script("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    await client.execute_script(
        "CREATE INDEX users_search_trgm ON users USING gin "
        "((lower(first_name || ' ' || last_name || ' ' || email)) gin_trgm_ops)"
    )


class Migration(migrations.Migration):
    dependencies = [("models", "0001_initial")]

    operations = [
        ops.AddConstraint(
            model_name="Account",
            constraint=CheckConstraint(
                check="seats_in_use >= 0 AND seats_in_use <= seats_total AND seats_total >= 1",
                name="accounts_seats_in_use_within_total",
            ),
        ),
        ops.RunSQL(PARTIAL_UNIQUE_INDEXES),
        ops.RunPython(add_search_index),
    ]
