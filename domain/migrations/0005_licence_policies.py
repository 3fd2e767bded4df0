"""Licence policies: the reclaim policy and its notices, the renewal notices."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


def _account() -> fields.ForeignKeyField:  # type: ignore[type-arg]
    return fields.ForeignKeyField(
        "models.Account",
        source_field="account_id",
        db_constraint=True,
        to_field="id",
        related_name=False,
        on_delete=OnDelete.RESTRICT,
    )


class Migration(migrations.Migration):
    dependencies = [("models", "0004_webhooks")]

    operations = [
        ops.CreateModel(
            name="ReclaimPolicy",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("account", _account()),
                ("enabled", fields.BooleanField(default=False)),
                ("inactive_days", fields.IntField()),
                ("notice_days", fields.IntField()),
                ("exempt_admins", fields.BooleanField(default=True)),
                ("exempt_user_ids", fields.JSONField(default=list)),
                ("version", fields.IntField(default=1)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "reclaim_policies", "app": "models", "unique_together": (("account",),), "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ReclaimNotice",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("account", _account()),
                ("user", fields.ForeignKeyField("models.User", source_field="user_id", db_constraint=True, to_field="id", related_name=False, on_delete=OnDelete.RESTRICT)),
                ("inactive_since", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("release_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "reclaim_notices", "app": "models", "unique_together": (("user", "inactive_since"),), "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RenewalNotice",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("account", _account()),
                ("period_index", fields.IntField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "renewal_notices", "app": "models", "unique_together": (("account", "period_index"),), "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
