"""The reclaim policy as stored, the users it covers, and the preview.

`covered_users` is the one statement both the job and the preview read the
policy's users with, and `rules.reclaim.plan` the one decision both take, so
the preview shows what the job will do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from domain.clock import Clock
from domain.enums import Role, UserStatus
from domain.errors import DomainError
from domain.models import User
from domain.policy_models import ReclaimPolicy
from domain.principal import Principal, parse_id
from domain.reads.access import require_admin_read
from domain.reads.cursors import bad_cursor, datetime_key, decode_cursor
from domain.reads.pages import Edge, Page, check_first
from domain.rules.reclaim import DEFAULT_TERMS, Plan, PolicyTerms, inactive_since, plan
from domain.sql import Statement

PREVIEW_KIND = "reclaim-preview"
# The window's start, in SQL: the later of the last activity and the start of
# the open assignment (CASE rather than GREATEST/MAX: the same on both backends).
_SINCE = (
    "CASE WHEN u.last_active_at IS NOT NULL AND u.last_active_at > a.assigned_at "
    "THEN u.last_active_at ELSE a.assigned_at END"
)


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    terms: PolicyTerms
    # 0: no policy row yet (the defaults, disabled).
    version: int
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class CoveredUser:
    user_id: int
    role: Role
    last_active_at: datetime | None
    assigned_at: datetime
    # The user's latest notice: the window it was sent for, and when.
    notice_window: datetime | None
    notice_sent_at: datetime | None

    @property
    def inactive_since(self) -> datetime:
        return inactive_since(self.last_active_at, self.assigned_at)

    @property
    def noticed_at(self) -> datetime | None:
        """When this window's notice went out (None: not yet)."""
        if self.notice_window is None or self.notice_window != self.inactive_since:
            return None
        return self.notice_sent_at


@dataclass(frozen=True, slots=True)
class ReclaimCandidate:
    user: User
    plan: Plan
    notice_sent_at: datetime | None


def terms_of(policy: ReclaimPolicy | None) -> PolicyTerms:
    if policy is None:
        return DEFAULT_TERMS
    return PolicyTerms(
        enabled=policy.enabled,
        inactive_days=policy.inactive_days,
        notice_days=policy.notice_days,
        exempt_admins=policy.exempt_admins,
        exempt_user_ids=frozenset(int(i) for i in policy.exempt_user_ids),
    )


async def load_policy(account_id: int, connection: BaseDBAsyncClient | None = None) -> StoredPolicy:
    query = ReclaimPolicy.filter(account_id=account_id)
    if connection is not None:
        query = query.using_db(connection)
    row = await query.first()
    return StoredPolicy(
        terms=terms_of(row),
        version=row.version if row else 0,
        updated_at=row.updated_at if row else None,
    )


def coverage(sql: Statement, account_id: int, terms: PolicyTerms) -> list[str]:
    """The WHERE clauses of `rules.reclaim.is_covered`, for the users table as `u`."""
    where = [
        f"u.account_id = {sql.param(account_id)}",
        f"u.status = {sql.param(UserStatus.ENABLED.value)}",
        f"u.role <> {sql.param(Role.OWNER.value)}",
    ]
    if terms.exempt_admins:
        where.append(f"u.role <> {sql.param(Role.ADMIN.value)}")
    if terms.exempt_user_ids:
        ids = ", ".join(sql.param(i) for i in sorted(terms.exempt_user_ids))
        where.append(f"u.id NOT IN ({ids})")
    return where


async def covered_users(
    connection: BaseDBAsyncClient,
    *,
    account_id: int,
    terms: PolicyTerms,
    watch_before: datetime | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[CoveredUser]:
    """Users the policy covers, by window start then id: one statement.

    `watch_before`: only windows opened at or before it (the job asks for
    those whose notice or release may be due; the preview for all).
    """
    sql = Statement(connection)
    where = coverage(sql, account_id, terms)
    if watch_before is not None:
        # The two halves of "_SINCE <= watch_before", each an index-friendly test.
        cutoff = sql.param(watch_before)
        where.append(f"(u.last_active_at IS NULL OR u.last_active_at <= {cutoff})")
        where.append(f"a.assigned_at <= {sql.param(watch_before)}")
    if after is not None:
        since, user_id = after
        where.append(f"({_SINCE}, u.id) > ({sql.param(since)}, {sql.param(user_id)})")
    rows = await sql.fetch(
        "SELECT u.id, u.role, u.last_active_at, a.assigned_at, "  # noqa: S608
        "n.inactive_since AS notice_window, n.created_at AS notice_sent_at "
        "FROM users u "
        "JOIN license_assignments a ON a.user_id = u.id AND a.unassigned_at IS NULL "
        "LEFT JOIN reclaim_notices n ON n.id = "
        "(SELECT MAX(m.id) FROM reclaim_notices m WHERE m.user_id = u.id) "
        f"WHERE {' AND '.join(where)} "
        f"ORDER BY {_SINCE}, u.id LIMIT {int(limit)}"
    )
    return [
        CoveredUser(
            user_id=row["id"],
            role=Role(row["role"]),
            last_active_at=row["last_active_at"],
            assigned_at=row["assigned_at"],
            notice_window=row["notice_window"],
            notice_sent_at=row["notice_sent_at"],
        )
        for row in rows
    ]


async def count_covered(account_id: int, terms: PolicyTerms) -> int:
    sql = Statement(connections.get("default"))
    where = coverage(sql, account_id, terms)
    rows = await sql.fetch(
        "SELECT COUNT(*) AS n FROM users u "  # noqa: S608
        "JOIN license_assignments a ON a.user_id = u.id AND a.unassigned_at IS NULL "
        f"WHERE {' AND '.join(where)}"
    )
    return int(rows[0]["n"])


def plan_for(terms: PolicyTerms, user: CoveredUser, now: datetime) -> Plan:
    return plan(terms, since=user.inactive_since, noticed_at=user.noticed_at, now=now)


# ---------------------------------------------------------------------------
# GraphQL's reads


async def reclaim_policy(*, actor: Principal) -> StoredPolicy:
    require_admin_read(actor)
    return await load_policy(actor.account_id)


async def exempt_users(*, actor: Principal, user_ids: Sequence[int]) -> list[User]:
    """The exempt users, in id order (ids of users since gone are skipped)."""
    require_admin_read(actor)
    return (
        await User.filter(account_id=actor.account_id, id__in=list(user_ids)).order_by("id")
        if user_ids
        else []
    )


async def reclaim_preview(
    *, actor: Principal, first: int, after: str | None, clock: Clock
) -> Page[ReclaimCandidate]:
    """Who the policy would release, and when, if nothing changes: every user it
    covers, the longest inactive first. While the policy is disabled, what it
    would do once enabled (notices not sent yet count from now)."""
    require_admin_read(actor)
    check_first(first)
    position = _decode(after) if after is not None else None
    stored = await load_policy(actor.account_id)
    now = clock.now()
    rows = await covered_users(
        connections.get("default"),
        account_id=actor.account_id,
        terms=stored.terms,
        watch_before=None,
        after=position,
        limit=first + 1,
    )
    users = {
        user.id: user for user in await User.filter(id__in=[row.user_id for row in rows[:first]])
    }
    edges = [
        Edge(
            ReclaimCandidate(
                user=users[row.user_id],
                plan=plan_for(stored.terms, row, now),
                notice_sent_at=row.noticed_at,
            ),
            (PREVIEW_KIND, row.inactive_since.isoformat(), row.user_id),
        )
        for row in rows[:first]
        if row.user_id in users
    ]
    total = await count_covered(actor.account_id, stored.terms)
    return Page(edges=edges, has_next_page=len(rows) > first, total_count=total)


def _decode(after: str) -> tuple[datetime, int]:
    value, row_id = decode_cursor(after, kind=PREVIEW_KIND)
    if value is None:
        raise bad_cursor()
    return datetime_key(value), row_id


def parse_exempt_ids(raw: Sequence[str]) -> list[int]:
    """Client ids to keys; a malformed one is NOT_FOUND like any unknown user."""
    try:
        return sorted({parse_id(value) for value in raw})
    except DomainError as error:
        error.field = "exemptUserIds"
        raise
