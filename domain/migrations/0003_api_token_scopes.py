"""API-token scopes and the columns SCIM provisioning keeps on users."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

SCIM_INDEXES = [
    # userName is unique per account, case-insensitively. A user made outside
    # SCIM has no userName of its own: its email is its userName, so the key
    # falls back to email_key and one index covers both kinds of user (and
    # serves `userName eq` filters).
    "CREATE UNIQUE INDEX users_scim_user_name ON users "
    "(account_id, (COALESCE(scim_user_name_key, email_key)))",
    "CREATE INDEX users_external_id ON users (account_id, external_id) "
    "WHERE external_id IS NOT NULL",
    # The users SCIM lists, by id: totalResults and startIndex pages walk
    # this index, not the table.
    "CREATE INDEX users_scim_listed ON users (account_id, id) WHERE deprovisioned_at IS NULL",
]


class Migration(migrations.Migration):
    dependencies = [("models", "0002_invariants")]

    operations = [
        ops.AddField(
            model_name="ApiToken",
            name="scopes",
            # Tokens made before scopes existed keep what they could do: GraphQL.
            field=fields.CharField(max_length=64, default="GRAPHQL", db_default="GRAPHQL"),
        ),
        ops.AddField(
            model_name="User",
            name="external_id",
            field=fields.CharField(max_length=320, null=True),
        ),
        ops.AddField(
            model_name="User",
            name="scim_user_name",
            field=fields.CharField(max_length=320, null=True),
        ),
        ops.AddField(
            model_name="User",
            name="scim_user_name_key",
            field=fields.CharField(max_length=320, null=True),
        ),
        ops.AddField(
            model_name="User",
            name="deprovisioned_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.RunSQL(SCIM_INDEXES),
    ]
