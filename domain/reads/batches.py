"""Batch loads behind the API's DataLoaders: one statement each, results in key
order, scoped to the account."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from tortoise import connections
from tortoise.functions import Count

from domain.enums import Role, UserStatus
from domain.models import Account, ApiToken, LicenseAssignment, User
from domain.reads.rows import (
    INVITATION_COLUMNS,
    InvitationRow,
    invitation_rows,
    latest_invitation_join,
    qualified,
)
from domain.sql import Statement

_Keyed = TypeVar("_Keyed", User, ApiToken)
# Every column of the model, named as Tortoise names them.
_ACCOUNT_COLUMNS = ", ".join(Account._meta.fields_db_projection.values())


async def _by_ids(model: type[_Keyed], ids: Sequence[int], **scope: int) -> list[_Keyed | None]:
    found = {row.id: row for row in await model.filter(**scope, id__in=list(set(ids)))}
    return [found.get(key) for key in ids]


async def accounts_by_ids(*, account_ids: Sequence[int]) -> list[Account | None]:
    """Every request that reads its account comes here once. Through
    Tortoise's queryset (pypika building the SELECT, then the model) this
    took 1.0 ms per request under cProfile, so the text is written here and
    each row becomes a model the way Tortoise's own select turns it into one
    (`_init_from_db`, the same conversions: tortoise-orm is pinned below 1.2)."""
    keys = sorted(set(account_ids))
    sql = Statement(connections.get("default"))
    listed = ", ".join(sql.param(key) for key in keys)
    rows = await sql.fetch(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id IN ({listed})"  # noqa: S608
    )
    found = {row["id"]: Account._init_from_db(**row) for row in rows}
    return [found.get(key) for key in account_ids]


async def pending_invitation_counts(*, account_ids: Sequence[int]) -> list[int]:
    """INVITED users per account (the `pendingInvitations` of the summary)."""
    rows = (
        await User.filter(account_id__in=list(set(account_ids)), status=UserStatus.INVITED)
        .group_by("account_id")
        .annotate(n=Count("id"))
        .values_list("account_id", "n")
    )
    counts: dict[int, int] = {int(account_id): int(n) for account_id, n in rows}
    return [counts.get(key, 0) for key in account_ids]


async def users_by_ids(*, account_id: int, ids: Sequence[int]) -> list[User | None]:
    return await _by_ids(User, ids, account_id=account_id)


async def owner_by_account_ids(*, account_id: int, keys: Sequence[int]) -> list[User | None]:
    """The OWNER of each account key; only `account_id` itself is ever answered."""
    owner = await User.get_or_none(account_id=account_id, role=Role.OWNER)
    return [owner if key == account_id else None for key in keys]


async def latest_invitation_by_user_ids(
    *, account_id: int, user_ids: Sequence[int]
) -> list[InvitationRow | None]:
    """The latest invitation of each user (domain.reads.rows.latest_invitation_join).

    Plain values (domain.reads.rows), as the users page reads them."""
    keys = sorted(set(user_ids))
    if not keys:
        return [None for _ in user_ids]
    sql = Statement(connections.get("default"))
    account = sql.param(account_id)
    listed = ", ".join(sql.param(key) for key in keys)
    rows = await sql.rows(
        f"SELECT {qualified(INVITATION_COLUMNS, 'i')} FROM users AS u "  # noqa: S608
        f"{latest_invitation_join(postgres=sql.postgres)} "
        f"WHERE u.account_id = {account} AND u.id IN ({listed}) AND i.id IS NOT NULL"
    )
    latest = {invitation.user_id: invitation for invitation in invitation_rows(rows)}
    return [latest.get(key) for key in user_ids]


async def assignments_by_user_ids(
    *, account_id: int, user_ids: Sequence[int]
) -> list[list[LicenseAssignment]]:
    """Every licence assignment of each user, newest first."""
    by_user: dict[int, list[LicenseAssignment]] = {key: [] for key in user_ids}
    rows = await LicenseAssignment.filter(
        account_id=account_id, user_id__in=list(set(user_ids))
    ).order_by("-assigned_at", "-id")
    for assignment in rows:
        by_user[assignment.user_id].append(assignment)
    return [by_user[key] for key in user_ids]


async def api_tokens_by_ids(*, account_id: int, ids: Sequence[int]) -> list[ApiToken | None]:
    return await _by_ids(ApiToken, ids, account_id=account_id)
