"""The contract's enums: the domain's StrEnums, registered with Strawberry.

The values live in domain.enums / domain.errors only; here they get their
GraphQL names and descriptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

import strawberry

from domain.enums import (
    ActorKind,
    ApiTokenScope,
    AssignmentEndReason,
    AuditAction,
    BillingInterval,
    ChargeKind,
    InvitationStatus,
    Role,
    SeatChangeKind,
    UserOrder,
    UserStatus,
    WebhookDeliveryStatus,
    WebhookEventType,
)
from domain.errors import ErrorCode

E = TypeVar("E", bound=Enum)


def _register(
    enum: type[E], *, description: str, values: Mapping[str, str] | None = None
) -> type[E]:
    strawberry.enum(enum, name=enum.__name__, description=description)
    definition = enum.__strawberry_definition__  # type: ignore[attr-defined]
    for value in definition.values:
        if values and value.name in values:
            value.description = values[value.name]
    unknown = set(values or ()) - {v.name for v in definition.values}
    if unknown:
        raise ValueError(f"{enum.__name__} has no values {sorted(unknown)}")
    return enum


_register(
    Role,
    description="What a user may do in its account.",
    values={
        "OWNER": "Primary contact, exactly one per account, full administrative rights.",
        "ADMIN": "Manages users, licences and seat count.",
        "MEMBER": "Uses the product; sees only itself.",
    },
)
_register(
    UserStatus,
    description="Whether a user holds a licence, and whether it has activated the account.",
    values={
        "INVITED": "Holds a licence; invitation not yet accepted.",
        "ENABLED": "Holds a licence and has activated the account.",
        "DISABLED": "Holds no licence; the record stays in the system.",
    },
)
_register(
    InvitationStatus,
    description="Where an invitation stands.",
    values={
        "PENDING": "Sent, not yet accepted; the token works until expiresAt.",
        "ACCEPTED": "The user set a password with it.",
        "REVOKED": "Withdrawn by an administrator, by an unassignment or by a reduction.",
        "EXPIRED": "Not accepted before expiresAt; its licence was released.",
    },
)
_register(
    ActorKind,
    description="Who performed an action.",
    values={
        "USER": "A signed-in user.",
        "API_TOKEN": "An API token of the account (acts with ADMIN rights).",
        "SYSTEM": "The service itself (scheduled jobs, account creation).",
    },
)
_register(
    AssignmentEndReason,
    description="Why a licence assignment ended.",
    values={
        "UNASSIGNED": "An administrator released the licence.",
        "INVITATION_REVOKED": "The pending invitation was revoked.",
        "INVITATION_EXPIRED": "The invitation expired before it was accepted.",
        "SEAT_REDUCTION": "Released at the period end by a seat reduction.",
    },
)
_register(
    AuditAction,
    description="What an audit event records.",
    values={
        "LICENSE_RELEASED": "A licence released by the period-end job because of a reduction.",
    },
)
_register(
    ApiTokenScope,
    description="Which interface an API token opens.",
    values={
        "GRAPHQL": "The GraphQL API with ADMIN rights.",
        "SCIM": "The SCIM 2.0 endpoints under /scim/v2.",
    },
)
_register(BillingInterval, description="Length of a billing period.")
_register(
    SeatChangeKind,
    description="What a seat count change does.",
    values={
        "INCREASE": "More licences, now, with a prorated charge.",
        "DECREASE": "Fewer licences, scheduled for the end of the current period.",
        "NONE": "The same total: cancels a scheduled reduction, if any.",
    },
)
_register(
    ChargeKind,
    description="Why a charge was recorded.",
    values={
        "SEAT_INCREASE": "Licences added during a period, prorated.",
        "RENEWAL": "A whole period at its start.",
    },
)
_register(
    UserOrder,
    description="Orders of account.users. LAST_ACTIVE puts never-active users first in "
    "ASC and last in DESC. Ties are broken by id.",
    values={
        "NAME_ASC": "By first then last name, case-insensitively.",
        "NAME_DESC": "By first then last name, case-insensitively, reversed.",
        "CREATED_ASC": "Oldest first.",
        "CREATED_DESC": "Newest first.",
        "LAST_ACTIVE_ASC": "Never active first, then least recently active.",
        "LAST_ACTIVE_DESC": "Most recently active first, never active last.",
    },
)
_register(
    ErrorCode,
    description="Machine-readable reason of a refusal.",
    values={
        "NO_AVAILABLE_LICENSES": "Every purchased licence is in use.",
        "EMAIL_TAKEN": "A user with this email already exists in the account.",
        "OWNER_LICENSE_REQUIRED": "The account owner always holds a licence.",
        "OWNER_ROLE_IMMUTABLE": "The OWNER role moves only through transferOwnership.",
        "AMOUNT_MISMATCH": "expectedAmountDueCents differs from the amount the server computed.",
        "SEATS_BELOW_USAGE": "A reduction below the number of licences in use.",
        "SEAT_LIMIT": "Seat count outside 1..maximum.",
        "TARGET_NOT_ELIGIBLE": "Ownership can move only to an ENABLED user of the same account.",
        "ACCOUNT_REQUIRED": "Several accounts match this email: pass accountId.",
        "IDEMPOTENCY_KEY_REUSED": "The Idempotency-Key was already used with a different request.",
        "IDEMPOTENCY_KEY_IN_USE": "A request with this Idempotency-Key is still running; "
        "retry later.",
        "UNAUTHENTICATED": "No valid bearer token (top-level errors only).",
        "SERVICE_UNAVAILABLE": "A dependency (the database) is down or busy: HTTP 503 with "
        "Retry-After. Retry with the same Idempotency-Key.",
        "PERSISTED_QUERY_NOT_FOUND": "Apollo automatic persisted queries: the hash is unknown; "
        "send the document with it.",
        "PERSISTED_QUERY_REQUIRED": "Only documents of the persisted-query manifest are accepted.",
    },
)

_register(
    WebhookEventType,
    description="What a webhook event reports; on the wire lower case, the first `_` a `.` "
    "(USER_INVITED: user.invited).",
)
_register(
    WebhookDeliveryStatus,
    description="Where a webhook delivery stands.",
    values={
        "PENDING": "Not yet accepted by the endpoint; retried on schedule.",
        "SUCCEEDED": "The endpoint answered 2xx.",
        "FAILED": "Given up: retries ran out, 410 Gone, or the endpoint was disabled.",
    },
)

__all__ = [
    "ActorKind",
    "ApiTokenScope",
    "AssignmentEndReason",
    "AuditAction",
    "BillingInterval",
    "ChargeKind",
    "ErrorCode",
    "InvitationStatus",
    "Role",
    "SeatChangeKind",
    "UserOrder",
    "UserStatus",
    "WebhookDeliveryStatus",
    "WebhookEventType",
]
