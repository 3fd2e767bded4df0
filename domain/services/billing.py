"""The billing period-end job: apply scheduled reductions, roll periods, charge renewals.

Each ended period of an account is closed in its own transaction, in order,
so an account several periods behind gets one RENEWAL per period and a
crash leaves it consistent at a period boundary. On PostgreSQL the common
case, an account with one period ended and no licence to release (no
scheduled reduction, or one the licences in use fit in), is closed for a
whole batch of accounts in one transaction of a few set-based statements
(`billing_batch`): the same changes, without the ten round trips per account
that bounded the job at a few hundred accounts per second. Both paths take
the roll and the amount from `domain.rules.renewal`.

Exactly once, under any number of concurrent runners: the first write of a
period's transaction is the conditional roll `WHERE id = ? AND period_index = k`.
Only the runner whose roll matched goes on (the others see 0 rows and move
on), and on PostgreSQL it holds the account row until it commits, so the
releases, the reduction and the charge happen once. The unique index
`charges_one_renewal` (account, period start) is the last guard.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from tortoise.exceptions import IntegrityError

from domain.clock import Clock
from domain.emails import LicensesReleasedPayload
from domain.enums import (
    AssignmentEndReason,
    AuditAction,
    ChargeKind,
    InvitationKind,
    InvitationStatus,
    Role,
    UserStatus,
    WebhookEventType,
)
from domain.models import Account, Charge, Invitation, User
from domain.principal import Principal
from domain.rules.renewal import Renewal, next_period, price_renewal, renewal_audit_data
from domain.rules.seats import (
    LICENSED_STATUSES,
    ReleaseCandidate,
    choose_released,
    licenses_over,
)
from domain.services.billing_batch import DueAccount, renew_batch
from domain.services.invitation_tokens import revoke_pending_invitations
from domain.services.licensing import expire_overdue_invitations, release_license
from domain.uow import UnitOfWork, unit_of_work
from domain.webhooks import renewal_event_data, seat_event_data

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
            list[DueAccount],
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
        renewed_now = await renew_batch(batch, now)
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
    period = next_period(account.billing_anchor, account.billing_interval, index)
    async with unit_of_work(now) as work:
        # The first write: whoever matches period_index = k owns period k's end.
        rolled = (
            await Account.filter(id=account.id, period_index=index)
            .using_db(work.connection)
            .update(
                period_index=period.index,
                current_period_start=period.start,
                current_period_end=period.end,
            )
        )
        if rolled != 1:
            return None
        system = Principal.system(account.id)
        current = await Account.get(id=account.id, using_db=work.connection)
        released: list[int] = []
        if current.scheduled_total is not None:
            released = await _apply_reduction(work, system, current)
            current = await Account.get(id=account.id, using_db=work.connection)
        renewal = price_renewal(
            period, seats_total=current.seats_total, seat_price_cents=current.seat_price_cents
        )
        charge = await _renewal_charge(work, current, renewal)
        await work.audit(
            actor=system,
            action=AuditAction.PERIOD_RENEWED,
            data=renewal_audit_data(
                renewal, currency=current.currency, charge_id=charge.id if charge else None
            ),
        )
        await work.webhook(
            account_id=account.id,
            event_type=WebhookEventType.PERIOD_RENEWED,
            data=renewal_event_data(renewal, charge_id=charge.id if charge else None),
        )
    return _ClosedPeriod(released_user_ids=tuple(released))


async def _renewal_charge(work: UnitOfWork, account: Account, renewal: Renewal) -> Charge | None:
    try:
        # A savepoint, so that a duplicate leaves the roll and the reduction
        # of this transaction intact (PostgreSQL aborts a transaction on error).
        async with work.connection._in_transaction() as savepoint:
            return await Charge.create(
                account_id=account.id,
                kind=ChargeKind.RENEWAL,
                quantity=renewal.quantity,
                unit_amount_cents=renewal.unit_amount_cents,
                amount_cents=renewal.amount_cents,
                currency=account.currency,
                period_start=renewal.period.start,
                period_end=renewal.period.end,
                created_at=work.now,
                using_db=savepoint,
            )
    except IntegrityError:
        # Not reachable while the conditional roll guards the period; should
        # a renewal exist already (data repaired by hand), it is not doubled.
        start = renewal.period.start
        log.warning("renewal of account %s from %s already charged", account.id, start)
        return (
            await Charge.filter(account_id=account.id, kind=ChargeKind.RENEWAL, period_start=start)
            .using_db(work.connection)
            .first()
        )


async def release_candidates(work: UnitOfWork, account_id: int) -> list[ReleaseCandidate]:
    """The licensed users a reduction chooses from (also what the renewal notice shows)."""
    users = (
        await User.filter(account_id=account_id, status__in=LICENSED_STATUSES)
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
        candidates = await release_candidates(work, account.id)
        status_of = {c.user_id: c.status for c in candidates}
        for user_id in choose_released(candidates, surplus):
            if not await release_license(
                work, actor=system, user_id=user_id, reason=AssignmentEndReason.SEAT_REDUCTION
            ):
                continue
            revoked = await revoke_pending_invitations(work, user_id=user_id)
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
            await work.webhook(
                account_id=account.id,
                event_type=WebhookEventType.LICENSE_RELEASED,
                data={"userId": str(user_id), "reason": AssignmentEndReason.SEAT_REDUCTION.value},
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
    await work.webhook(
        account_id=account.id,
        event_type=WebhookEventType.SEATS_REDUCTION_APPLIED,
        data=seat_event_data(
            previous_total=account.seats_total, total=applied_total, effective_at=work.now
        ),
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
            payload=LicensesReleasedPayload(
                account_id=account.id,
                recipient_user_id=owner.id if owner else None,
                user_ids=tuple(released),
                new_total=applied_total,
            ),
        )
    return released
