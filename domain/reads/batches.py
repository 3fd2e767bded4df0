"""Batch loads behind the API's DataLoaders: one statement each, results in key
order, scoped to the account."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from tortoise import connections
from tortoise.functions import Count

from domain.enums import Role, UserStatus
from domain.models import Account, ApiToken, LicenseAssignment, User
from domain.reads.rows import INVITATION_COLUMNS, InvitationRow, invitation_rows
from domain.sql import Statement

_Keyed = TypeVar("_Keyed", Account, User, ApiToken)


async def _by_ids(model: type[_Keyed], ids: Sequence[int], **scope: int) -> list[_Keyed | None]:
    found = {row.id: row for row in await model.filter(**scope, id__in=list(set(ids)))}
    return [found.get(key) for key in ids]


async def accounts_by_ids(*, account_ids: Sequence[int]) -> list[Account | None]:
    return await _by_ids(Account, account_ids)


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
    """The latest invitation (highest id) of each user; a resend rotates the same row.

    Plain values (domain.reads.rows): the users page reads one per user."""
    latest: dict[int, InvitationRow] = {}
    keys = sorted(set(user_ids))
    if not keys:
        return [None for _ in user_ids]
    sql = Statement(connections.get("default"))
    account = sql.param(account_id)
    listed = ", ".join(sql.param(key) for key in keys)
    rows = await sql.rows(
        f"SELECT {INVITATION_COLUMNS} FROM invitations "  # noqa: S608 - placeholders only
        f"WHERE account_id = {account} AND user_id IN ({listed})"
    )
    for invitation in invitation_rows(rows):
        current = latest.get(invitation.user_id)
        if current is None or invitation.id > current.id:
            latest[invitation.user_id] = invitation
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
