"""PostgreSQL: NOTIFY auth_changes whenever a bearer token could stop working.

Each API process keeps recently seen tokens in memory (domain/auth_cache.py)
and serves them only while it hears this channel. The triggers fire in the
transaction that makes the change, so the notice leaves at its commit, from
whatever process or statement made it: a session ended, expired or deleted;
an API token revoked, re-scoped or deleted; a user whose status, role or
account changed, or who was deleted. Activity stamps (last_active_at,
last_used_at) do not notify. SQLite needs nothing here: its data_version
already tells every process about every commit.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

NOTICES = [
    """
    CREATE FUNCTION notify_auth_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('auth_changes', TG_TABLE_NAME);
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER sessions_auth_change AFTER UPDATE ON sessions FOR EACH ROW "
    "WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION notify_auth_change()",
    "CREATE TRIGGER sessions_auth_delete AFTER DELETE ON sessions FOR EACH ROW "
    "EXECUTE FUNCTION notify_auth_change()",
    "CREATE TRIGGER api_tokens_auth_change AFTER UPDATE ON api_tokens FOR EACH ROW "
    "WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at "
    "OR OLD.scopes IS DISTINCT FROM NEW.scopes "
    "OR OLD.secret_hash IS DISTINCT FROM NEW.secret_hash "
    "OR OLD.account_id IS DISTINCT FROM NEW.account_id) "
    "EXECUTE FUNCTION notify_auth_change()",
    "CREATE TRIGGER api_tokens_auth_delete AFTER DELETE ON api_tokens FOR EACH ROW "
    "EXECUTE FUNCTION notify_auth_change()",
    "CREATE TRIGGER users_auth_change AFTER UPDATE ON users FOR EACH ROW "
    "WHEN (OLD.status IS DISTINCT FROM NEW.status "
    "OR OLD.role IS DISTINCT FROM NEW.role "
    "OR OLD.account_id IS DISTINCT FROM NEW.account_id) "
    "EXECUTE FUNCTION notify_auth_change()",
    "CREATE TRIGGER users_auth_delete AFTER DELETE ON users FOR EACH ROW "
    "EXECUTE FUNCTION notify_auth_change()",
]


async def add_notices(apps: object, schema_editor: object) -> None:
    client = schema_editor.client  # type: ignore[attr-defined]
    if client.capabilities.dialect != "postgres":
        return
    for statement in NOTICES:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("models", "0005_licence_policies")]

    operations = [ops.RunPython(add_notices)]
