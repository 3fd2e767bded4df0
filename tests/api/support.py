"""Helpers of the schema tests: principals, users written straight to the tables,
and a one-call `execute` through the schema with a RequestContext."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from domain.clock import FixedClock
from domain.enums import ActorKind, InvitationKind, InvitationStatus, Role, UserStatus
from domain.models import ApiToken, Invitation, LicenseAssignment, User
from domain.principal import Principal
from domain.validation import sort_name
from schema import schema
from schema.context import RequestContext


def as_user(user: User) -> Principal:
    return Principal(
        account_id=user.account_id, kind=ActorKind.USER, role=Role(user.role), user_id=user.id
    )


async def token_principal(account_id: int) -> Principal:
    token = await ApiToken.filter(account_id=account_id).first()
    assert token is not None
    return Principal(
        account_id=account_id, kind=ActorKind.API_TOKEN, role=Role.ADMIN, token_id=token.id
    )


async def add_user(
    account_id: int,
    *,
    first_name: str,
    last_name: str = "Tester",
    email: str | None = None,
    role: Role = Role.MEMBER,
    status: UserStatus = UserStatus.ENABLED,
    created_at: datetime,
    last_active_at: datetime | None = None,
    qualification: str | None = None,
    assigned_by: int | None = None,
    invitation: bool = False,
) -> User:
    """A user row (and optionally its licence assignment and invitation), no service involved."""
    address = email or f"{first_name}.{last_name}@example.com".lower()
    user = await User.create(
        account_id=account_id,
        email=address,
        email_key=address.lower(),
        first_name=first_name,
        last_name=last_name,
        sort_name=sort_name(first_name, last_name),
        role=role,
        qualification=qualification,
        status=status,
        created_at=created_at,
        last_active_at=last_active_at,
    )
    if assigned_by is not None:
        await LicenseAssignment.create(
            account_id=account_id,
            user_id=user.id,
            assigned_at=created_at,
            assigned_by_kind=ActorKind.USER,
            assigned_by_user_id=assigned_by,
        )
    if invitation:
        await Invitation.create(
            account_id=account_id,
            user_id=user.id,
            kind=InvitationKind.LICENSE,
            email=address,
            token_hash=f"hash-{user.id}",
            status=InvitationStatus.PENDING,
            invited_by_user_id=assigned_by,
            created_at=created_at,
            expires_at=created_at,
        )
    return user


async def execute(
    query: str,
    principal: Principal | None,
    clock: FixedClock,
    **variables: Any,
) -> Any:
    return await schema.execute(
        query,
        variable_values=variables,
        context_value=RequestContext(principal=principal, clock=clock, request_id="test"),
    )


def codes(result: Any) -> list[str]:
    return [error.extensions.get("code") for error in result.errors or ()]


def error_paths(result: Any) -> list[str]:
    return [".".join(str(p) for p in error.path or ()) for error in result.errors or ()]


class StatementCounter(logging.Handler):
    """Counts the SQL statements Tortoise's clients log at DEBUG."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "connection pool" not in message:
            self.statements.append(message)


@contextmanager
def counting_statements() -> Iterator[StatementCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = StatementCounter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)
