"""The whole database as plain rows, to show that a refusal changed nothing."""

from __future__ import annotations

from typing import Any

from domain.models import (
    Account,
    ApiToken,
    AuditEvent,
    Charge,
    IdempotencyRecord,
    Invitation,
    LicenseAssignment,
    LoginFailure,
    OutboxMessage,
    Session,
    User,
)
from domain.policy_models import ReclaimNotice, ReclaimPolicy, RenewalNotice

TABLES = (
    Account,
    User,
    ApiToken,
    Session,
    LicenseAssignment,
    Invitation,
    Charge,
    AuditEvent,
    OutboxMessage,
    IdempotencyRecord,
    LoginFailure,
    ReclaimPolicy,
    ReclaimNotice,
    RenewalNotice,
)


async def database_snapshot() -> dict[str, list[tuple[Any, ...]]]:
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    for model in TABLES:
        rows = await model.all().order_by("id").values_list()
        snapshot[model._meta.db_table] = [tuple(row) for row in rows]
    return snapshot
