"""Tortoise models: what the service stores.

Invariants the database itself enforces (see the migrations):
- one email per account, case-insensitively (unique account + email_key);
- at most one OWNER per account (partial unique index on users);
- at most one open licence assignment per user (partial unique index);
- licences in use never above the total (CHECK on accounts);
- one RENEWAL charge per account and period start (partial unique index).
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from domain.enums import (
    ActorKind,
    AssignmentEndReason,
    AuditAction,
    BillingInterval,
    ChargeKind,
    InvitationKind,
    InvitationStatus,
    Role,
    UserStatus,
    WebhookDeliveryStatus,
)
from domain.rules.seats import holds_license


class Account(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    # The seat counter is kept beside the total so that taking a licence is
    # one conditional UPDATE (in_use < total) on every backend.
    seats_total = fields.IntField()
    seats_in_use = fields.IntField(default=0)
    scheduled_total = fields.IntField(null=True)
    seat_price_cents = fields.BigIntField()
    currency = fields.CharField(max_length=3)
    billing_interval = fields.CharEnumField(BillingInterval, max_length=5)
    # End of the first period: every later period end is computed from it so
    # that Jan 31 -> Feb 28 -> Mar 31 keeps its day.
    billing_anchor = fields.DatetimeField()
    period_index = fields.IntField(default=0)
    current_period_start = fields.DatetimeField()
    current_period_end = fields.DatetimeField(db_index=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "accounts"


class User(Model):
    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="users", on_delete=fields.RESTRICT
    )
    account_id: int
    email = fields.CharField(max_length=320)
    # Lower-cased email: uniqueness per account and login lookups use it.
    email_key = fields.CharField(max_length=320, db_index=True)
    first_name = fields.CharField(max_length=100)
    last_name = fields.CharField(max_length=100)
    # Lower-cased "first last", the key of the NAME orders.
    sort_name = fields.CharField(max_length=201)
    role = fields.CharEnumField(Role, max_length=6)
    qualification = fields.CharField(max_length=200, null=True)
    status = fields.CharEnumField(UserStatus, max_length=8)
    password_hash = fields.CharField(max_length=255, null=True)
    created_at = fields.DatetimeField()
    last_active_at = fields.DatetimeField(null=True)
    # SCIM provisioning: the identity provider's id for the user, and the
    # userName as it sent it (None: the email is the userName) with its
    # lower-cased key. An index on (account, coalesce(key, email_key)) keeps
    # userName unique per account. A deprovisioned user (SCIM DELETE) keeps
    # its record but is no longer a SCIM resource.
    external_id = fields.CharField(max_length=320, null=True)
    scim_user_name = fields.CharField(max_length=320, null=True)
    scim_user_name_key = fields.CharField(max_length=320, null=True)
    deprovisioned_at = fields.DatetimeField(null=True)

    class Meta:
        table = "users"
        unique_together = (("account", "email_key"),)
        indexes = (
            ("account_id", "sort_name", "id"),
            ("account_id", "created_at", "id"),
            ("account_id", "last_active_at", "id"),
            ("account_id", "status"),
        )

    @property
    def name(self) -> str:
        return display_name(self.first_name, self.last_name)

    @property
    def holds_license(self) -> bool:
        return holds_license(self.status)


def display_name(first_name: str, last_name: str) -> str:
    """A user's `name`: first and last name."""
    return f"{first_name} {last_name}"


class ApiToken(Model):
    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="api_tokens", on_delete=fields.RESTRICT
    )
    account_id: int
    name = fields.CharField(max_length=100)
    prefix = fields.CharField(max_length=16)
    secret_hash = fields.CharField(max_length=64, unique=True)
    # Space-separated ApiTokenScope names: which interfaces the token opens.
    scopes = fields.CharField(max_length=64, default="GRAPHQL", db_default="GRAPHQL")
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    created_by_id: int | None
    created_at = fields.DatetimeField()
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_tokens"


class Session(Model):
    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, on_delete=fields.RESTRICT
    )
    account_id: int
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.RESTRICT
    )
    user_id: int
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "sessions"
        indexes = (("user_id", "ended_at"),)


class LicenseAssignment(Model):
    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, on_delete=fields.RESTRICT
    )
    account_id: int
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="license_assignments", on_delete=fields.RESTRICT
    )
    user_id: int
    assigned_at = fields.DatetimeField()
    assigned_by_kind = fields.CharEnumField(ActorKind, max_length=9)
    assigned_by_user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    assigned_by_user_id: int | None
    assigned_by_token: fields.ForeignKeyNullableRelation[ApiToken] = fields.ForeignKeyField(
        "models.ApiToken", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    assigned_by_token_id: int | None
    unassigned_at = fields.DatetimeField(null=True)
    unassigned_by_kind = fields.CharEnumField(ActorKind, max_length=9, null=True)
    unassigned_by_user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    unassigned_by_user_id: int | None
    unassigned_by_token: fields.ForeignKeyNullableRelation[ApiToken] = fields.ForeignKeyField(
        "models.ApiToken", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    unassigned_by_token_id: int | None
    end_reason = fields.CharEnumField(AssignmentEndReason, max_length=18, null=True)

    class Meta:
        table = "license_assignments"
        indexes = (("user_id", "assigned_at"),)


class Invitation(Model):
    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, on_delete=fields.RESTRICT
    )
    account_id: int
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="invitations", on_delete=fields.RESTRICT
    )
    user_id: int
    kind = fields.CharEnumField(InvitationKind, max_length=12)
    email = fields.CharField(max_length=320)
    # The token is never stored: it is derived from the server's secret key,
    # the invitation id and this version (bumped by every resend), and only
    # its hash is kept for look-up.
    token_version = fields.IntField(default=1)
    token_hash = fields.CharField(max_length=64, unique=True)
    status = fields.CharEnumField(InvitationStatus, max_length=8)
    invited_by_user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    invited_by_user_id: int | None
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField()
    accepted_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    delivery_attempts = fields.IntField(default=0)
    last_delivery_error = fields.CharField(max_length=500, null=True)

    class Meta:
        table = "invitations"
        indexes = (("account_id", "status", "expires_at"), ("user_id", "id"))


class Charge(Model):
    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="charges", on_delete=fields.RESTRICT
    )
    account_id: int
    kind = fields.CharEnumField(ChargeKind, max_length=13)
    quantity = fields.IntField()
    unit_amount_cents = fields.BigIntField()
    amount_cents = fields.BigIntField()
    currency = fields.CharField(max_length=3)
    period_start = fields.DatetimeField()
    period_end = fields.DatetimeField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "charges"
        indexes = (("account_id", "id"),)


class AuditEvent(Model):
    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, on_delete=fields.RESTRICT
    )
    account_id: int
    action = fields.CharEnumField(AuditAction, max_length=24)
    actor_kind = fields.CharEnumField(ActorKind, max_length=9)
    actor_user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    actor_user_id: int | None
    actor_token: fields.ForeignKeyNullableRelation[ApiToken] = fields.ForeignKeyField(
        "models.ApiToken", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    actor_token_id: int | None
    target_user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    target_user_id: int | None
    data: Any = fields.JSONField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "audit_events"
        indexes = (("account_id", "id"),)


class OutboxMessage(Model):
    """An email owed to someone, committed with the change that caused it.

    The payload holds ids only; the job re-reads the state when it renders.
    """

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    account_id: int | None
    # An EmailKind, or WEBHOOK_OUTBOX_KIND for a webhook delivery (its
    # payload names the WebhookDelivery): one claim/lease/retry/relay for both.
    kind = fields.CharField(max_length=40)
    payload: Any = fields.JSONField()
    created_at = fields.DatetimeField()
    # When the relay may pick the row up again; pushed back on each failure.
    available_at = fields.DatetimeField()
    enqueued_at = fields.DatetimeField(null=True)
    sent_at = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    last_error = fields.CharField(max_length=500, null=True)
    # Delivery was refused for good (e.g. 550 no such user) or retries ran out.
    failed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox_messages"
        indexes = (("sent_at", "available_at"),)


class IdempotencyRecord(Model):
    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, on_delete=fields.RESTRICT
    )
    account_id: int
    principal = fields.CharField(max_length=32)
    key = fields.CharField(max_length=255)
    request_hash = fields.CharField(max_length=64)
    response_body = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    completed_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "idempotency_records"
        unique_together = (("account", "principal", "key"),)


class LoginFailure(Model):
    id = fields.BigIntField(primary_key=True)
    # "email:<lower-cased email>" or "client:<address>".
    scope = fields.CharField(max_length=400)
    created_at = fields.DatetimeField()

    class Meta:
        table = "login_failures"
        indexes = (("scope", "created_at"),)


class WebhookEndpoint(Model):
    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, on_delete=fields.RESTRICT
    )
    account_id: int
    url = fields.CharField(max_length=2000)
    description = fields.CharField(max_length=500, null=True)
    # WebhookEventType values; empty: every type.
    event_types: Any = fields.JSONField()
    # The whsec_ secrets, encrypted under a key derived from SECRET_KEY
    # (domain/webhook_secrets.py): a database dump alone cannot sign.
    secret_encrypted = fields.TextField()
    previous_secret_encrypted = fields.TextField(null=True)
    previous_secret_expires_at = fields.DatetimeField(null=True)
    enabled = fields.BooleanField(default=True)
    disabled_reason = fields.CharField(max_length=200, null=True)
    # Start of the current run of failed deliveries; reset by a success.
    failing_since = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    deleted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_endpoints"
        indexes = (("account_id", "deleted_at"),)


class WebhookEvent(Model):
    """One event as sent: its id is the webhook-id header of every copy."""

    id = fields.CharField(max_length=40, primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, on_delete=fields.RESTRICT
    )
    account_id: int
    event_type = fields.CharField(max_length=40)
    data: Any = fields.JSONField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "webhook_events"


class WebhookDelivery(Model):
    """One event owed to one endpoint; its outbox row drives the attempts."""

    id = fields.BigIntField(primary_key=True)
    endpoint: fields.ForeignKeyRelation[WebhookEndpoint] = fields.ForeignKeyField(
        "models.WebhookEndpoint", related_name=False, on_delete=fields.RESTRICT
    )
    endpoint_id: int
    event: fields.ForeignKeyRelation[WebhookEvent] = fields.ForeignKeyField(
        "models.WebhookEvent", related_name=False, on_delete=fields.RESTRICT
    )
    event_id: str
    status = fields.CharEnumField(WebhookDeliveryStatus, max_length=9)
    attempts = fields.IntField(default=0)
    last_attempt_at = fields.DatetimeField(null=True)
    next_attempt_at = fields.DatetimeField(null=True)
    last_response_status = fields.IntField(null=True)
    last_error = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "webhook_deliveries"
        indexes = (("endpoint_id", "id"),)


class WebhookAttempt(Model):
    id = fields.BigIntField(primary_key=True)
    delivery: fields.ForeignKeyRelation[WebhookDelivery] = fields.ForeignKeyField(
        "models.WebhookDelivery", related_name=False, on_delete=fields.RESTRICT
    )
    delivery_id: int
    attempted_at = fields.DatetimeField()
    response_status = fields.IntField(null=True)
    error = fields.CharField(max_length=500, null=True)
    duration_ms = fields.IntField()

    class Meta:
        table = "webhook_attempts"
        indexes = (("delivery_id", "id"),)
