"""The billing period-end job: apply scheduled reductions, roll periods, charge renewals.

Each ended period of an account is closed in its own transaction, in order,
so an account several periods behind gets one RENEWAL per period and a
crash leaves it consistent at a period boundary. On PostgreSQL the common
case, an account with one period ended and no licence to release (no
scheduled reduction, or one the licences in use fit in), is closed for a
whole batch of accounts in one transaction of a few set-based statements
(`_renew_batch`): the same changes, without the ten round trips per account
that bounded the job at a few hundred accounts per second.

Exactly once, under any number of concurrent runners: the first write of a
period's transaction is the conditional roll `WHERE id = ? AND period_index = k`.
Only the runner whose roll matched goes on (the others see 0 rows and move
on), and on PostgreSQL it holds the account row until it commits, so the
releases, the reduction and the charge happen once. The unique index
`charges_one_renewal` (account, period start) is the last guard.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from tortoise import connections
from tortoise.exceptions import IntegrityError

from domain.clock import Clock
from domain.enums import (
    ActorKind,
    AssignmentEndReason,
    AuditAction,
    BillingInterval,
    ChargeKind,
    EmailKind,
    InvitationKind,
    InvitationStatus,
    Role,
    UserStatus,
)
from domain.models import Account, Charge, Invitation, User
from domain.principal import Principal
from domain.rules.periods import period_bounds
from domain.rules.seats import ReleaseCandidate, choose_released, licenses_over
from domain.services.licensing import expire_overdue_invitations, release_license
from domain.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodEndReport:
    # Accounts found with an ended period (whether or not this run closed it).
    accounts_due: int
    # Periods this run closed, each with its RENEWAL charge.
    periods_renewed: int
    # Licences this run released because of a reduction.
    licenses_released: int
    # Accounts whose processing raised; logged, retried by the next run.
    failed_account_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class _ClosedPeriod:
    released_user_ids: tuple[int, ...]


async def run_period_end(
    *, clock: Clock, account_id: int | None = None, batch_size: int = 500
) -> PeriodEndReport:
    """Close every ended period of every account (or of `account_id`) as of now."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    now = clock.now()
    accounts_due = renewed = released = 0
    failed: list[int] = []
    after_id = 0
    while True:
        query = Account.filter(current_period_end__lte=now, id__gt=after_id)
        if account_id is not None:
            query = query.filter(id=account_id)
        batch = cast(
            list[_DueAccount],
            await query.order_by("id")
            .limit(batch_size)
            .values_list(
                "id",
                "period_index",
                "billing_anchor",
                "billing_interval",
                "scheduled_total",
                "seats_in_use",
            ),
        )
        accounts_due += len(batch)
        # The common case, a plain renewal, for the whole batch at once;
        # what it leaves (and what it cannot do) goes the per-account way.
        renewed_now = await _renew_batch(batch, now)
        renewed += len(renewed_now)
        for due_id, *_ in batch:
            if due_id in renewed_now:
                continue
            try:
                closed = await _catch_up(due_id, now)
            except Exception:
                # One broken account must not hold back the others; the next
                # run retries it from where it stopped (a period boundary).
                log.exception("period end failed for account %s", due_id)
                failed.append(due_id)
                continue
            renewed += len(closed)
            released += sum(len(c.released_user_ids) for c in closed)
        if len(batch) < batch_size:
            break
        after_id = batch[-1][0]
    return PeriodEndReport(
        accounts_due=accounts_due,
        periods_renewed=renewed,
        licenses_released=released,
        failed_account_ids=tuple(failed),
    )


# id, period_index, billing_anchor, billing_interval, scheduled_total, seats_in_use
_DueAccount = tuple[int, int, datetime, str, int | None, int]


@dataclass(frozen=True, slots=True)
class _Renewal:
    account_id: int
    index: int  # the period being closed
    start: datetime  # of the next period
    end: datetime
    reduce_to: int | None  # the scheduled total, applied now


async def _renew_batch(batch: list[_DueAccount], now: datetime) -> set[int]:
    """Close, in ONE transaction, the ended period of every account of the
    batch that needs no licence released: one period ended (the next one not
    yet), and no scheduled reduction or one the licences in use fit in.
    Returns the accounts it closed.

    The same changes as `_close_period` for those accounts (the conditional
    roll first, the reduction with its SEAT_REDUCTION_APPLIED event, the
    RENEWAL charge, the PERIOD_RENEWED event), made with a few set-based
    statements instead of about ten per account: the per-statement round
    trips were the job's cost. PostgreSQL only (arrays). What it does not
    close (another runner did, the state changed, an overdue invitation to
    expire first, other backends, any error) goes the per-account way,
    which reads its state again, so nothing is lost or done twice.
    """
    if connections.get("default").capabilities.dialect != "postgres":
        return set()
    renewals: list[_Renewal] = []
    for account_id, index, anchor, interval, scheduled_total, in_use in batch:
        if scheduled_total is not None and scheduled_total < in_use:
            continue  # licences to release: the per-account way
        start, end = period_bounds(anchor, BillingInterval(interval), index + 1)
        if end > now:  # exactly one period to close
            renewals.append(_Renewal(account_id, index, start, end, scheduled_total))
    if not renewals:
        return set()
    try:
        async with unit_of_work(now) as work:
            return await _renew_rows(work, renewals)
    except Exception:
        log.warning("batched renewal failed; renewing one account at a time", exc_info=True)
        return set()


async def _renew_rows(work: UnitOfWork, renewals: list[_Renewal]) -> set[int]:
    connection = work.connection
    renewals.sort(key=lambda renewal: renewal.account_id)
    ids = [renewal.account_id for renewal in renewals]
    # Account rows locked in id order (two batch runners cannot deadlock);
    # the totals read here are the "before" of the reductions.
    locked = await connection.execute_query_dict(
        "SELECT id, seats_total FROM accounts WHERE id = ANY($1::int[]) "
        "ORDER BY id FOR NO KEY UPDATE",
        [ids],
    )
    before = {row["id"]: row["seats_total"] for row in locked}
    # The conditional roll: whoever matches period_index = k owns the end of
    # period k, exactly as in _close_period. It also checks again, under the
    # lock, what made the account fit for this path: the same scheduled
    # total, the licences in use within it, and no overdue invitation (the
    # per-account path expires those first).
    rolled = await connection.execute_query_dict(
        "UPDATE accounts AS a SET period_index = v.index + 1, "
        "current_period_start = v.start_at, current_period_end = v.end_at, "
        "seats_total = COALESCE(v.reduce_to, a.seats_total), scheduled_total = NULL "
        "FROM unnest($1::int[], $2::int[], $3::timestamptz[], $4::timestamptz[], $5::int[]) "
        "AS v(id, index, start_at, end_at, reduce_to) "
        "WHERE a.id = v.id AND a.period_index = v.index "
        "AND a.scheduled_total IS NOT DISTINCT FROM v.reduce_to "
        "AND (v.reduce_to IS NULL OR (a.seats_in_use <= v.reduce_to AND NOT EXISTS ("
        "  SELECT 1 FROM invitations AS i WHERE i.account_id = a.id AND i.kind = $6 "
        "  AND i.status = $7 AND i.expires_at <= $8))) "
        "RETURNING a.id, a.seats_total, a.seat_price_cents, a.currency",
        [
            ids,
            [renewal.index for renewal in renewals],
            [renewal.start for renewal in renewals],
            [renewal.end for renewal in renewals],
            [renewal.reduce_to for renewal in renewals],
            InvitationKind.LICENSE.value,
            InvitationStatus.PENDING.value,
            work.now,
        ],
    )
    if not rolled:
        return set()
    period = {renewal.account_id: renewal for renewal in renewals}
    rolled.sort(key=lambda row: row["id"])
    reduced = [row for row in rolled if period[row["id"]].reduce_to is not None]
    if reduced:
        # Before the PERIOD_RENEWED events, as in _close_period.
        await _insert_audits(
            work,
            AuditAction.SEAT_REDUCTION_APPLIED,
            [row["id"] for row in reduced],
            [
                {"before": before[row["id"]], "after": row["seats_total"], "releasedUserIds": []}
                for row in reduced
            ],
        )
    charged = await connection.execute_query_dict(
        "INSERT INTO charges (account_id, kind, quantity, unit_amount_cents, amount_cents, "
        "currency, period_start, period_end, created_at) "
        "SELECT v.account_id, $1, v.quantity, v.unit, v.amount, v.currency, v.start_at, "
        "v.end_at, $2 FROM unnest($3::int[], $4::int[], $5::bigint[], $6::bigint[], "
        "$7::text[], $8::timestamptz[], $9::timestamptz[]) "
        "AS v(account_id, quantity, unit, amount, currency, start_at, end_at) "
        # The unique renewal index is the last guard: a duplicate is not
        # charged twice (as in _renewal_charge), its charge is looked up.
        "ON CONFLICT (account_id, period_start) WHERE kind = 'RENEWAL' DO NOTHING "
        "RETURNING id, account_id",
        [
            ChargeKind.RENEWAL.value,
            work.now,
            [row["id"] for row in rolled],
            [row["seats_total"] for row in rolled],
            [row["seat_price_cents"] for row in rolled],
            [row["seats_total"] * row["seat_price_cents"] for row in rolled],
            [row["currency"] for row in rolled],
            [period[row["id"]].start for row in rolled],
            [period[row["id"]].end for row in rolled],
        ],
    )
    charge_of = {row["account_id"]: row["id"] for row in charged}
    for row in rolled:
        if row["id"] not in charge_of:
            start = period[row["id"]].start
            log.warning("renewal of account %s from %s already charged", row["id"], start)
            existing = (
                await Charge.filter(
                    account_id=row["id"], kind=ChargeKind.RENEWAL, period_start=start
                )
                .using_db(connection)
                .first()
            )
            charge_of[row["id"]] = existing.id if existing else None
    await _insert_audits(
        work,
        AuditAction.PERIOD_RENEWED,
        [row["id"] for row in rolled],
        [
            {
                "periodIndex": period[row["id"]].index + 1,
                "periodStart": period[row["id"]].start.isoformat(),
                "periodEnd": period[row["id"]].end.isoformat(),
                "quantity": row["seats_total"],
                "amountCents": row["seats_total"] * row["seat_price_cents"],
                "currency": row["currency"],
                "chargeId": charge_of[row["id"]],
            }
            for row in rolled
        ],
    )
    return {row["id"] for row in rolled}


async def _insert_audits(
    work: UnitOfWork, action: AuditAction, account_ids: list[int], data: list[dict[str, Any]]
) -> None:
    """One SYSTEM audit event per account, in the order given (one statement)."""
    await work.connection.execute_query(
        "INSERT INTO audit_events (account_id, action, actor_kind, data, created_at) "
        "SELECT v.account_id, $1, $2, v.data::jsonb, $3 "
        "FROM unnest($4::int[], $5::text[]) WITH ORDINALITY AS v(account_id, data, n) "
        "ORDER BY v.n",
        [
            action.value,
            ActorKind.SYSTEM.value,
            work.now,
            account_ids,
            [json.dumps(item, separators=(",", ":")) for item in data],
        ],
    )


async def _catch_up(account_id: int, now: datetime) -> list[_ClosedPeriod]:
    """Close the account's ended periods one by one, oldest first."""
    closed: list[_ClosedPeriod] = []
    while True:
        account = await Account.get_or_none(id=account_id)
        if account is None or account.current_period_end > now:
            return closed
        outcome = await _close_period(account, now)
        # None: another runner closed this period first; read again and
        # continue with the next one, if it has ended too.
        if outcome is not None:
            closed.append(outcome)


async def _close_period(account: Account, now: datetime) -> _ClosedPeriod | None:
    index = account.period_index
    start, end = period_bounds(account.billing_anchor, account.billing_interval, index + 1)
    async with unit_of_work(now) as work:
        # The first write: whoever matches period_index = k owns period k's end.
        rolled = (
            await Account.filter(id=account.id, period_index=index)
            .using_db(work.connection)
            .update(period_index=index + 1, current_period_start=start, current_period_end=end)
        )
        if rolled != 1:
            return None
        system = Principal.system(account.id)
        current = await Account.get(id=account.id, using_db=work.connection)
        released: list[int] = []
        if current.scheduled_total is not None:
            released = await _apply_reduction(work, system, current)
            current = await Account.get(id=account.id, using_db=work.connection)
        charge = await _renewal_charge(work, current, start, end)
        await work.audit(
            actor=system,
            action=AuditAction.PERIOD_RENEWED,
            data={
                "periodIndex": index + 1,
                "periodStart": start.isoformat(),
                "periodEnd": end.isoformat(),
                "quantity": current.seats_total,
                "amountCents": current.seats_total * current.seat_price_cents,
                "currency": current.currency,
                "chargeId": charge.id if charge else None,
            },
        )
    return _ClosedPeriod(released_user_ids=tuple(released))


async def _renewal_charge(
    work: UnitOfWork, account: Account, start: datetime, end: datetime
) -> Charge | None:
    try:
        # A savepoint, so that a duplicate leaves the roll and the reduction
        # of this transaction intact (PostgreSQL aborts a transaction on error).
        async with work.connection._in_transaction() as savepoint:
            return await Charge.create(
                account_id=account.id,
                kind=ChargeKind.RENEWAL,
                quantity=account.seats_total,
                unit_amount_cents=account.seat_price_cents,
                amount_cents=account.seats_total * account.seat_price_cents,
                currency=account.currency,
                period_start=start,
                period_end=end,
                created_at=work.now,
                using_db=savepoint,
            )
    except IntegrityError:
        # Not reachable while the conditional roll guards the period; should
        # a renewal exist already (data repaired by hand), it is not doubled.
        log.warning("renewal of account %s from %s already charged", account.id, start)
        return (
            await Charge.filter(account_id=account.id, kind=ChargeKind.RENEWAL, period_start=start)
            .using_db(work.connection)
            .first()
        )


async def _release_candidates(work: UnitOfWork, account_id: int) -> list[ReleaseCandidate]:
    users = (
        await User.filter(
            account_id=account_id, status__in=[UserStatus.INVITED, UserStatus.ENABLED]
        )
        .using_db(work.connection)
        .only("id", "status", "role", "last_active_at", "created_at")
    )
    invited_at: dict[int, datetime] = {}
    pending = (
        await Invitation.filter(
            account_id=account_id, kind=InvitationKind.LICENSE, status=InvitationStatus.PENDING
        )
        .using_db(work.connection)
        .values_list("user_id", "created_at")
    )
    for user_id, created_at in pending:
        if user_id not in invited_at or created_at > invited_at[user_id]:
            invited_at[user_id] = created_at
    return [
        ReleaseCandidate(
            user_id=user.id,
            status=UserStatus(user.status),
            is_owner=user.role == Role.OWNER,
            invitation_created_at=invited_at.get(user.id),
            last_active_at=user.last_active_at,
            created_at=user.created_at,
        )
        for user in users
    ]


async def _apply_reduction(work: UnitOfWork, system: Principal, account: Account) -> list[int]:
    """Release the surplus in the SPEC's order, then lower the total. Returns released ids."""
    assert account.scheduled_total is not None
    new_total = account.scheduled_total
    # Invitations already past their expiry free their licence first, as the
    # expiry job would have; only what remains over the new total is released.
    await expire_overdue_invitations(work, account_id=account.id, now=work.now)
    in_use = (await Account.get(id=account.id, using_db=work.connection)).seats_in_use
    released: list[int] = []
    surplus = licenses_over(new_total, in_use)
    if surplus:
        candidates = await _release_candidates(work, account.id)
        status_of = {c.user_id: c.status for c in candidates}
        for user_id in choose_released(candidates, surplus):
            if not await release_license(
                work, actor=system, user_id=user_id, reason=AssignmentEndReason.SEAT_REDUCTION
            ):
                continue
            revoked = (
                await Invitation.filter(user_id=user_id, status=InvitationStatus.PENDING)
                .using_db(work.connection)
                .update(status=InvitationStatus.REVOKED, revoked_at=work.now)
            )
            await work.audit(
                actor=system,
                action=AuditAction.LICENSE_RELEASED,
                target_user_id=user_id,
                data={
                    "reason": AssignmentEndReason.SEAT_REDUCTION.value,
                    "previousStatus": status_of[user_id].value,
                    "invitationRevoked": revoked > 0,
                    "newTotal": new_total,
                },
            )
            released.append(user_id)
        in_use = (await Account.get(id=account.id, using_db=work.connection)).seats_in_use
    # Never below the licences still held (the owner's at least): the CHECK
    # would refuse it and the account would be stuck at this boundary.
    applied_total = max(new_total, in_use)
    if applied_total != new_total:
        log.error(
            "account %s: %s licences still in use after releasing for a reduction to %s",
            account.id,
            in_use,
            new_total,
        )
    await (
        Account.filter(id=account.id)
        .using_db(work.connection)
        .update(seats_total=applied_total, scheduled_total=None)
    )
    await work.audit(
        actor=system,
        action=AuditAction.SEAT_REDUCTION_APPLIED,
        data={
            "before": account.seats_total,
            "after": applied_total,
            "releasedUserIds": released,
        },
    )
    if released:
        owner = (
            await User.filter(account_id=account.id, role=Role.OWNER)
            .using_db(work.connection)
            .only("id")
            .first()
        )
        await work.email(
            account_id=account.id,
            kind=EmailKind.LICENSES_RELEASED,
            payload={
                "accountId": account.id,
                "recipientUserId": owner.id if owner else None,
                "userIds": released,
                "newTotal": applied_total,
            },
        )
    return released
