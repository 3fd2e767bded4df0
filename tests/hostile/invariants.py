"""The SPEC's invariants, read straight from the database (Tortoise must be initialised).

`violations(now)` returns a list of readable problems (empty when all hold),
for every account:

- licences in use <= total, and in use == open licence assignments == users
  INVITED or ENABLED; no user holds two open assignments;
- exactly one OWNER, ENABLED and holding a licence;
- no DISABLED user with an open assignment or a live session (not ended, not
  expired);

and, with `references=True` (heavier: reads whole tables), every session,
assignment, invitation and audit event names users (and API tokens) of its
own account.

`account_rows(account_id)` is every row of one account, table by table, to
show that a request by another account's principal changed none of them.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from tortoise.expressions import Q

from domain.enums import Role, UserStatus
from domain.models import (
    Account,
    ApiToken,
    AuditEvent,
    Charge,
    IdempotencyRecord,
    Invitation,
    LicenseAssignment,
    OutboxMessage,
    Session,
    User,
)

ACCOUNT_TABLES: tuple[Any, ...] = (
    User,
    ApiToken,
    Session,
    LicenseAssignment,
    Invitation,
    Charge,
    AuditEvent,
    OutboxMessage,
    IdempotencyRecord,
)


async def violations(now: datetime, *, references: bool = False) -> list[str]:
    problems: list[str] = []
    for account in await Account.all().order_by("id"):
        problems.extend(await _account_violations(account, now))
    if references:
        problems.extend(await _reference_violations())
    return problems


async def _account_violations(account: Account, now: datetime) -> list[str]:
    where = f"account {account.id}"
    problems = []
    statuses = Counter(
        status for (status,) in await User.filter(account_id=account.id).values_list("status")
    )
    licensed = statuses[UserStatus.INVITED] + statuses[UserStatus.ENABLED]
    open_assignments = await LicenseAssignment.filter(
        account_id=account.id, unassigned_at__isnull=True
    ).values_list("user_id", flat=True)
    if account.seats_in_use > account.seats_total:
        problems.append(f"{where}: in use {account.seats_in_use} > total {account.seats_total}")
    if not account.seats_in_use == len(open_assignments) == licensed:
        problems.append(
            f"{where}: in use {account.seats_in_use}, open assignments "
            f"{len(open_assignments)}, INVITED+ENABLED users {licensed}"
        )
    doubled = [user for user, n in Counter(open_assignments).items() if n > 1]
    if doubled:
        problems.append(f"{where}: users with several open assignments: {doubled}")
    owners = await User.filter(account_id=account.id, role=Role.OWNER)
    if len(owners) != 1:
        problems.append(f"{where}: {len(owners)} owners")
    for owner in owners:
        if owner.status != UserStatus.ENABLED or owner.id not in open_assignments:
            problems.append(f"{where}: owner {owner.id} is {owner.status} / not licensed")
    disabled_open = await LicenseAssignment.filter(
        account_id=account.id, unassigned_at__isnull=True, user__status=UserStatus.DISABLED
    ).values_list("user_id", flat=True)
    if disabled_open:
        problems.append(f"{where}: DISABLED users with an open assignment: {disabled_open}")
    disabled_sessions = await Session.filter(
        account_id=account.id,
        ended_at__isnull=True,
        expires_at__gt=now,
        user__status=UserStatus.DISABLED,
    ).values_list("user_id", flat=True)
    if disabled_sessions:
        problems.append(f"{where}: DISABLED users with a live session: {disabled_sessions}")
    return problems


async def _reference_violations() -> list[str]:
    account_of_user = dict(await User.all().values_list("id", "account_id"))
    account_of_token = dict(await ApiToken.all().values_list("id", "account_id"))
    problems = []
    checks: list[tuple[Any, tuple[str, ...], tuple[str, ...]]] = [
        (Session, ("user_id",), ()),
        (
            LicenseAssignment,
            ("user_id", "assigned_by_user_id", "unassigned_by_user_id"),
            ("assigned_by_token_id", "unassigned_by_token_id"),
        ),
        (Invitation, ("user_id", "invited_by_user_id"), ()),
        (AuditEvent, ("actor_user_id", "target_user_id"), ("actor_token_id",)),
        (ApiToken, ("created_by_id",), ()),
    ]
    for model, user_columns, token_columns in checks:
        columns = ("id", "account_id", *user_columns, *token_columns)
        any_reference = Q()
        for column in (*user_columns, *token_columns):
            any_reference |= Q(**{f"{column}__isnull": False})
        for row in await model.filter(any_reference).values(*columns):
            for column in user_columns:
                user = row[column]
                if user is not None and account_of_user.get(user) != row["account_id"]:
                    problems.append(
                        f"{model.__name__} {row['id']} of account {row['account_id']}: "
                        f"{column} {user} belongs to account {account_of_user.get(user)}"
                    )
            for column in token_columns:
                token = row[column]
                if token is not None and account_of_token.get(token) != row["account_id"]:
                    problems.append(
                        f"{model.__name__} {row['id']} of account {row['account_id']}: "
                        f"{column} {token} belongs to account {account_of_token.get(token)}"
                    )
    return problems


async def account_rows(account_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of one account, table by table (the account row included)."""
    rows: dict[str, list[tuple[Any, ...]]] = {
        "accounts": [tuple(r) for r in await Account.filter(id=account_id).values_list()]
    }
    for model in ACCOUNT_TABLES:
        found = await model.filter(account_id=account_id).order_by("id").values_list()
        rows[model._meta.db_table] = [tuple(row) for row in found]
    return rows


def changed_rows(
    before: dict[str, list[tuple[Any, ...]]],
    after: dict[str, list[tuple[Any, ...]]],
    *,
    insert_only: frozenset[str] = frozenset(),
) -> list[str]:
    """What differs, table by table. In `insert_only` tables new rows are
    allowed (e.g. sessions started by a login), changed or removed ones not."""
    problems = []
    for table, old in before.items():
        new = after.get(table, [])
        if table in insert_only:
            missing = sorted(set(old) - set(new), key=repr)
            if missing:
                problems.append(f"{table}: rows changed or removed: {missing[:3]}")
        elif old != new:
            added = sorted(set(new) - set(old), key=repr)
            removed = sorted(set(old) - set(new), key=repr)
            problems.append(f"{table}: +{added[:3]} -{removed[:3]}")
    return problems
