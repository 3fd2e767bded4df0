"""Webhook endpoints, events, deliveries and their attempts.

outbox_messages.kind stays VARCHAR(40): the model reads it as plain text now
(an EmailKind or WEBHOOK), which needs no change to the column.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from domain.enums import WebhookDeliveryStatus


class Migration(migrations.Migration):
    dependencies = [("models", "0003_api_token_scopes")]

    operations = [
        ops.CreateModel(
            name="WebhookEndpoint",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("account", fields.ForeignKeyField("models.Account", source_field="account_id", db_constraint=True, to_field="id", related_name=False, on_delete=OnDelete.RESTRICT)),
                ("url", fields.CharField(max_length=2000)),
                ("description", fields.CharField(max_length=500, null=True)),
                ("event_types", fields.JSONField()),
                ("secret_encrypted", fields.TextField(unique=False)),
                ("previous_secret_encrypted", fields.TextField(null=True, unique=False)),
                ("previous_secret_expires_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("enabled", fields.BooleanField(default=True)),
                ("disabled_reason", fields.CharField(max_length=200, null=True)),
                ("failing_since", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("deleted_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "webhook_endpoints", "app": "models", "indexes": [Index(fields=["account_id", "deleted_at"])], "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WebhookEvent",
            fields=[
                ("id", fields.CharField(max_length=40, primary_key=True, unique=True, db_index=True)),
                ("account", fields.ForeignKeyField("models.Account", source_field="account_id", db_constraint=True, to_field="id", related_name=False, on_delete=OnDelete.RESTRICT)),
                ("event_type", fields.CharField(max_length=40)),
                ("data", fields.JSONField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "webhook_events", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WebhookDelivery",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("endpoint", fields.ForeignKeyField("models.WebhookEndpoint", source_field="endpoint_id", db_constraint=True, to_field="id", related_name=False, on_delete=OnDelete.RESTRICT)),
                ("event", fields.ForeignKeyField("models.WebhookEvent", source_field="event_id", db_constraint=True, to_field="id", related_name=False, on_delete=OnDelete.RESTRICT)),
                ("status", fields.CharEnumField(description="PENDING: PENDING\nSUCCEEDED: SUCCEEDED\nFAILED: FAILED", enum_type=WebhookDeliveryStatus, max_length=9)),
                ("attempts", fields.IntField(default=0)),
                ("last_attempt_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("next_attempt_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("last_response_status", fields.IntField(null=True)),
                ("last_error", fields.CharField(max_length=500, null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "webhook_deliveries", "app": "models", "indexes": [Index(fields=["endpoint_id", "id"])], "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WebhookAttempt",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("delivery", fields.ForeignKeyField("models.WebhookDelivery", source_field="delivery_id", db_constraint=True, to_field="id", related_name=False, on_delete=OnDelete.RESTRICT)),
                ("attempted_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("response_status", fields.IntField(null=True)),
                ("error", fields.CharField(max_length=500, null=True)),
                ("duration_ms", fields.IntField()),
            ],
            options={"table": "webhook_attempts", "app": "models", "indexes": [Index(fields=["delivery_id", "id"])], "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
