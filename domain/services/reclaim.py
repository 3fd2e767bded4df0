"""Reclaiming inactive licences: setting the policy, and the job that applies it.

The job (`run_reclaim`, beside the period-end job) reads each enabled
account's users whose notice or release may be due in one statement
(`reads.reclaim.covered_users`), decides with `rules.reclaim.plan`, then:

- notices: one transaction per batch inserts the notices; the unique
  (user, inactive_since) index lets only one of two concurrent runs insert a
  user's notice, and only an inserted notice writes the email;
- releases: one transaction per batch locks the account (as every licence
  change does), checks that the policy is still the one planned with, and
  releases with ONE conditional UPDATE whose WHERE repeats the rule (still
  ENABLED, not the owner, not exempt, no activity since the cutoff, the
  assignment older than it): a user who signed in, was exempted or changed
  role meanwhile is not released, and of two runs only one flips a user.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from tortoise import connections

from domain.clock import Clock
from domain.emails import ReclaimNoticePayload
from domain.enums import (
    AssignmentEndReason,
    AuditAction,
    UserStatus,
    WebhookEventType,
)
from domain.errors import DomainError, ErrorCode
from domain.models import User
from domain.policy_models import ReclaimPolicy
from domain.principal import Principal, require_admin
from domain.reads.reclaim import (
    CoveredUser,
    StoredPolicy,
    coverage,
    covered_users,
    load_policy,
    parse_exempt_ids,
    plan_for,
)
from domain.rules.reclaim import Plan, PolicyTerms, Step, check_terms
from domain.services.account_lock import lock_account
from domain.services.licensing import close_assignments, end_sessions_of, give_back_license
from domain.sql import Statement
from domain.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)

BATCH_SIZE = 500


# ---------------------------------------------------------------------------
# The policy


async def set_reclaim_policy(
    *,
    actor: Principal,
    enabled: bool,
    inactive_days: int,
    notice_days: int,
    exempt_admins: bool,
    exempt_user_ids: Sequence[str],
    clock: Clock,
) -> StoredPolicy:
    """Replace the account's reclaim policy (ADMIN or OWNER)."""
    require_admin(actor)
    ids = parse_exempt_ids(exempt_user_ids)
    check_terms(inactive_days=inactive_days, notice_days=notice_days, exempt_user_count=len(ids))
    async with unit_of_work(clock.now()) as work:
        # The account lock orders this change with the job's releases.
        await lock_account(work, actor.account_id)
        known = await (
            User.filter(account_id=actor.account_id, id__in=ids).using_db(work.connection).count()
        )
        if known != len(ids):
            raise DomainError(
                ErrorCode.NOT_FOUND, "An exempt user is not in this account.", field="exemptUserIds"
            )
        before = await load_policy(actor.account_id, work.connection)
        values: dict[str, Any] = {
            "enabled": enabled,
            "inactive_days": inactive_days,
            "notice_days": notice_days,
            "exempt_admins": exempt_admins,
            "exempt_user_ids": ids,
            "updated_at": work.now,
        }
        if before.version:
            await (
                ReclaimPolicy.filter(account_id=actor.account_id)
                .using_db(work.connection)
                .update(version=before.version + 1, **values)
            )
        else:
            await ReclaimPolicy.create(
                account_id=actor.account_id, version=1, using_db=work.connection, **values
            )
        after = await load_policy(actor.account_id, work.connection)
        await work.audit(
            actor=actor,
            action=AuditAction.RECLAIM_POLICY_CHANGED,
            data={"before": _audit_terms(before.terms), "after": _audit_terms(after.terms)},
        )
    return after


def _audit_terms(terms: PolicyTerms) -> dict[str, Any]:
    return {
        "enabled": terms.enabled,
        "inactiveDays": terms.inactive_days,
        "noticeDays": terms.notice_days,
        "exemptAdmins": terms.exempt_admins,
        "exemptUserIds": [str(i) for i in sorted(terms.exempt_user_ids)],
    }


# ---------------------------------------------------------------------------
# The job


@dataclass(frozen=True)
class ReclaimReport:
    accounts: int
    notices_sent: int
    licenses_released: int
    failed_account_ids: tuple[int, ...] = ()


async def run_reclaim(
    *, clock: Clock, account_id: int | None = None, batch_size: int = BATCH_SIZE
) -> ReclaimReport:
    """Send the notices and release the licences due as of now, for every
    account with an enabled policy (or only `account_id`)."""
    now = clock.now()
    query = ReclaimPolicy.filter(enabled=True)
    if account_id is not None:
        query = query.filter(account_id=account_id)
    account_ids = cast(
        list[int], await query.order_by("account_id").values_list("account_id", flat=True)
    )
    noticed = released = 0
    failed: list[int] = []
    for due_id in account_ids:
        try:
            n, r = await _reclaim_account(due_id, now, batch_size)
        except Exception:
            # One broken account must not hold back the others; the next run
            # retries it (every step is idempotent).
            log.exception("reclaim failed for account %s", due_id)
            failed.append(due_id)
            continue
        noticed += n
        released += r
    return ReclaimReport(
        accounts=len(account_ids),
        notices_sent=noticed,
        licenses_released=released,
        failed_account_ids=tuple(failed),
    )


async def _reclaim_account(account_id: int, now: datetime, batch_size: int) -> tuple[int, int]:
    stored = await load_policy(account_id)
    if not stored.terms.enabled:
        return 0, 0
    noticed = released = 0
    after: tuple[datetime, int] | None = None
    while True:
        batch = await covered_users(
            connections.get("default"),
            account_id=account_id,
            terms=stored.terms,
            watch_before=now - stored.terms.watch_from,
            after=after,
            limit=batch_size,
        )
        plans = [(user, plan_for(stored.terms, user, now)) for user in batch]
        notices = [(user, p) for user, p in plans if p.step is Step.NOTICE]
        releases = [(user, p) for user, p in plans if p.step is Step.RELEASE]
        if notices:
            noticed += await _send_notices(account_id, notices, now)
        if releases:
            done = await _release(account_id, stored, releases, now)
            if done is None:
                # The policy changed under the run: stop; the next run plans anew.
                break
            released += done
        if len(batch) < batch_size:
            break
        after = (batch[-1].inactive_since, batch[-1].user_id)
    return noticed, released


async def _send_notices(
    account_id: int, due: Sequence[tuple[CoveredUser, Plan]], now: datetime
) -> int:
    async with unit_of_work(now) as work:
        sql = Statement(work.connection)
        rows = ", ".join(
            f"({sql.param(account_id)}, {sql.param(user.user_id)}, "
            f"{sql.param(p.inactive_since)}, {sql.param(p.release_at)}, {sql.param(now)})"
            for user, p in due
        )
        inserted = await sql.fetch(
            "INSERT INTO reclaim_notices "  # noqa: S608
            "(account_id, user_id, inactive_since, release_at, created_at) "
            f"VALUES {rows} ON CONFLICT (user_id, inactive_since) DO NOTHING RETURNING user_id"
        )
        noticed = {int(row["user_id"]) for row in inserted}
        for user, p in due:
            if user.user_id in noticed:
                await work.email(
                    account_id=account_id,
                    payload=ReclaimNoticePayload(
                        user_id=user.user_id,
                        inactive_since=p.inactive_since,
                        release_at=p.release_at,
                    ),
                )
    return len(noticed)


async def _release(
    account_id: int,
    planned: StoredPolicy,
    due: Sequence[tuple[CoveredUser, Plan]],
    now: datetime,
) -> int | None:
    """Release the due users' licences; None when the policy changed since planning."""
    terms = planned.terms
    async with unit_of_work(now) as work:
        await lock_account(work, account_id)
        current = await load_policy(account_id, work.connection)
        if current.version != planned.version or not current.terms.enabled:
            return None
        ids = await _flip_to_disabled(work, account_id, terms, [u.user_id for u, _ in due], now)
        if not ids:
            return 0
        await _free_licences(work, account_id, ids)
        plans = {user.user_id: p for user, p in due}
        await work.audit_each(
            actor=Principal.system(account_id),
            action=AuditAction.LICENSE_RECLAIMED,
            entries=[
                (
                    user_id,
                    {
                        "reason": AssignmentEndReason.INACTIVITY.value,
                        "inactiveSince": plans[user_id].inactive_since.isoformat(),
                        "inactiveDays": terms.inactive_days,
                        "policyVersion": planned.version,
                    },
                )
                for user_id in ids
            ],
        )
        await work.webhook_each(
            account_id=account_id,
            event_type=WebhookEventType.LICENSE_RELEASED,
            datas=[
                {"userId": str(user_id), "reason": AssignmentEndReason.INACTIVITY.value}
                for user_id in ids
            ],
        )
    return len(ids)


async def _flip_to_disabled(
    work: UnitOfWork,
    account_id: int,
    terms: PolicyTerms,
    user_ids: Sequence[int],
    now: datetime,
) -> list[int]:
    """ENABLED -> DISABLED for those still due, in one conditional UPDATE; the ids flipped."""
    cutoff = now - terms.inactivity
    sql = Statement(work.connection)
    # Placeholders in the order they appear (SQLite's are positional).
    status = sql.param(UserStatus.DISABLED.value)
    where = [
        *coverage(sql, account_id, terms),
        f"u.id IN ({', '.join(sql.param(i) for i in user_ids)})",
        f"(u.last_active_at IS NULL OR u.last_active_at <= {sql.param(cutoff)})",
        "NOT EXISTS (SELECT 1 FROM license_assignments a WHERE a.user_id = u.id "  # noqa: S608
        f"AND a.unassigned_at IS NULL AND a.assigned_at > {sql.param(cutoff)})",
    ]
    rows = await sql.fetch(
        f"UPDATE users AS u SET status = {status} "  # noqa: S608
        f"WHERE {' AND '.join(where)} RETURNING id"
    )
    return sorted(int(row["id"]) for row in rows)


async def _free_licences(work: UnitOfWork, account_id: int, user_ids: list[int]) -> None:
    """What `licensing.release_license` does after its flip, for a set of users."""
    system = Principal.system(account_id)
    await give_back_license(work, account_id=account_id, count=len(user_ids))
    await close_assignments(
        work, actor=system, user_ids=user_ids, reason=AssignmentEndReason.INACTIVITY
    )
    await end_sessions_of(work, user_ids=user_ids)
