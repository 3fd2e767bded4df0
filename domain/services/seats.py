"""Changing the seat count: a prorated increase now, or a reduction at the period end.

What a change does is decided by the pure rule `domain.rules.seat_change`;
the preview and the change run it on the same account row and the same
proration instant, so a client that passes the preview's `prorationDate`
back gets exactly the previewed amount.

Concurrency: every write is a conditional UPDATE on the values the plan was
computed from (total, period, scheduled reduction, and for a reduction the
licences in use). When another request moved one of them in between, the
transaction is rolled back and the plan computed again from fresh values (a
few attempts), so an amount is never charged on a stale total or period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain import config
from domain.clock import Clock
from domain.emails import SeatChangeReceiptPayload
from domain.enums import AuditAction, ChargeKind, Role, SeatChangeKind, WebhookEventType
from domain.errors import DomainError, ErrorCode
from domain.models import Account, Charge, User
from domain.principal import Principal, require_admin
from domain.rules.seat_change import SeatChangePlan, plan_seat_change, proration_instant
from domain.rules.seats import SEAT_MAXIMUM, SEAT_MINIMUM
from domain.uow import UnitOfWork, unit_of_work
from domain.webhooks import seat_event_data

# Attempts at a conditional update before giving up; each failure means that
# another change to the same account committed in between.
_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class SeatChangePreview:
    kind: SeatChangeKind
    current_total: int
    new_total: int
    amount_due_now_cents: int
    currency: str
    # The proration instant, a whole second: pass it back to change_seat_count.
    proration_date: datetime
    effective_at: datetime  # as in SeatChangePlan
    agreement_version: str
    licenses_over_new_total: int


@dataclass(frozen=True)
class SeatChangeOutcome:
    account: Account
    # The SEAT_INCREASE charge; None for a reduction or no change.
    charge: Charge | None


class SeatChangeConflict(RuntimeError):
    """The account kept changing under the request (never expected in practice)."""


class _Moved(Exception):
    """The account changed since it was read: roll back and plan again."""


def _plan(account: Account, total: int, at: datetime) -> SeatChangePlan:
    return plan_seat_change(
        current_total=account.seats_total,
        new_total=total,
        in_use=account.seats_in_use,
        seat_price_cents=account.seat_price_cents,
        period_start=account.current_period_start,
        period_end=account.current_period_end,
        at=at,
    )


def _check_total(total: int) -> None:
    if not SEAT_MINIMUM <= total <= SEAT_MAXIMUM:
        raise DomainError(
            ErrorCode.SEAT_LIMIT,
            f"The number of licences must be {SEAT_MINIMUM}..{SEAT_MAXIMUM}.",
            field="total",
        )


def _proration_instant(proration_date: datetime | None, now: datetime) -> datetime:
    return proration_instant(proration_date, now=now, max_age=config.current().proration_max_age)


def _preview(account: Account, plan: SeatChangePlan) -> SeatChangePreview:
    return SeatChangePreview(
        kind=plan.kind,
        current_total=plan.current_total,
        new_total=plan.new_total,
        amount_due_now_cents=plan.amount_due_cents,
        currency=account.currency,
        proration_date=plan.proration_date,
        effective_at=plan.effective_at,
        agreement_version=config.AGREEMENT_VERSION,
        licenses_over_new_total=plan.licenses_over_new_total,
    )


async def preview_seat_change(
    *,
    actor: Principal,
    total: int,
    proration_date: datetime | None = None,
    clock: Clock,
) -> SeatChangePreview:
    """What change_seat_count(total) would do now, without doing it."""
    require_admin(actor)
    _check_total(total)
    at = _proration_instant(proration_date, clock.now())
    account = await Account.get(id=actor.account_id)
    return _preview(account, _plan(account, total, at))


async def change_seat_count(
    *,
    actor: Principal,
    total: int,
    accept_agreement: bool,
    agreement_version: str,
    expected_amount_due_cents: int | None = None,
    proration_date: datetime | None = None,
    clock: Clock,
) -> SeatChangeOutcome:
    """Increase now with a prorated charge, schedule a reduction, or cancel one."""
    require_admin(actor)
    _check_total(total)
    now = clock.now()
    at = _proration_instant(proration_date, now)
    if not accept_agreement:
        raise DomainError(
            ErrorCode.AGREEMENT_NOT_ACCEPTED,
            "Accept the licence agreement to change the number of licences.",
            field="acceptAgreement",
        )
    if agreement_version != config.AGREEMENT_VERSION:
        raise DomainError(
            ErrorCode.AGREEMENT_OUTDATED,
            f"The current licence agreement is version {config.AGREEMENT_VERSION}.",
            field="agreementVersion",
        )
    for _ in range(_MAX_ATTEMPTS):
        try:
            async with unit_of_work(now) as work:
                account = await Account.get(id=actor.account_id, using_db=work.connection)
                plan = _plan(account, total, at)
                # The contract's rule for every kind: an amount the client did
                # not expect (0 for a reduction or no change) refuses the change,
                # e.g. an increase previewed before someone else's turned it
                # into a reduction.
                _check_expected_amount(plan, expected_amount_due_cents)
                charge = None
                if plan.kind is SeatChangeKind.INCREASE:
                    charge = await _increase(work, actor, account, plan)
                elif plan.kind is SeatChangeKind.DECREASE:
                    await _schedule_reduction(work, actor, account, plan)
                else:
                    await _cancel_reduction(
                        work, actor, account, plan, reason="SAME_TOTAL_REQUESTED"
                    )
                account = await Account.get(id=actor.account_id, using_db=work.connection)
        except _Moved:
            continue
        return SeatChangeOutcome(account=account, charge=charge)
    raise SeatChangeConflict("The seat count kept changing; try again.")


async def cancel_scheduled_seat_change(*, actor: Principal, clock: Clock) -> Account:
    """Drop the scheduled reduction; without effect (nor audit) when none is scheduled."""
    require_admin(actor)
    now = clock.now()
    for _ in range(_MAX_ATTEMPTS):
        try:
            async with unit_of_work(now) as work:
                account = await Account.get(id=actor.account_id, using_db=work.connection)
                # Keeping the total is the plan: no charge, effective now.
                plan = _plan(account, account.seats_total, now)
                if await _cancel_reduction(work, actor, account, plan, reason="CANCELLED"):
                    account = await Account.get(id=actor.account_id, using_db=work.connection)
        except _Moved:
            continue
        return account
    raise SeatChangeConflict("The seat count kept changing; try again.")


def _check_expected_amount(plan: SeatChangePlan, expected: int | None) -> None:
    if expected is not None and expected != plan.amount_due_cents:
        raise DomainError(
            ErrorCode.AMOUNT_MISMATCH,
            f"The amount due now is {plan.amount_due_cents}, not {expected}.",
            field="expectedAmountDueCents",
        )


async def _increase(
    work: UnitOfWork, actor: Principal, account: Account, plan: SeatChangePlan
) -> Charge:
    await _move(work, account, seats_total=plan.new_total, scheduled_total=None)
    charge = await Charge.create(
        account_id=account.id,
        kind=ChargeKind.SEAT_INCREASE,
        quantity=plan.new_total - plan.current_total,
        unit_amount_cents=account.seat_price_cents,
        amount_cents=plan.amount_due_cents,
        currency=account.currency,
        period_start=plan.charged_from,
        period_end=account.current_period_end,
        created_at=work.now,
        using_db=work.connection,
    )
    await work.audit(
        actor=actor,
        action=AuditAction.SEATS_INCREASED,
        data={
            "before": plan.current_total,
            "after": plan.new_total,
            "amountCents": plan.amount_due_cents,
            "currency": account.currency,
            "prorationDate": plan.proration_date.isoformat(),
            "chargeId": charge.id,
        },
    )
    await work.webhook(
        account_id=account.id,
        event_type=WebhookEventType.SEATS_INCREASED,
        data=seat_event_data(
            previous_total=plan.current_total,
            total=plan.new_total,
            effective_at=work.now,
            charge=charge,
        ),
    )
    if account.scheduled_total is not None:
        await _audit_cancelled(work, actor, account, plan, reason="SEATS_INCREASED")
    await _send_receipt(work, account, plan, charge=charge)
    return charge


async def _schedule_reduction(
    work: UnitOfWork, actor: Principal, account: Account, plan: SeatChangePlan
) -> None:
    if plan.licenses_over_new_total > 0:
        raise DomainError(
            ErrorCode.SEATS_BELOW_USAGE,
            f"{account.seats_in_use} licences are in use; release some before reducing to "
            f"{plan.new_total}.",
            field="total",
        )
    # Re-planned from fresh values when it moved: licences taken meanwhile
    # give SEATS_BELOW_USAGE on the next attempt.
    await _move(
        work,
        account,
        also={"seats_in_use__lte": plan.new_total},
        scheduled_total=plan.new_total,
    )
    await work.audit(
        actor=actor,
        action=AuditAction.SEAT_REDUCTION_SCHEDULED,
        data={
            "before": plan.current_total,
            "after": plan.new_total,
            "replacedScheduledTotal": account.scheduled_total,
            "effectiveAt": plan.effective_at.isoformat(),
        },
    )
    await work.webhook(
        account_id=account.id,
        event_type=WebhookEventType.SEATS_REDUCTION_SCHEDULED,
        data=seat_event_data(
            previous_total=plan.current_total, total=plan.new_total, effective_at=plan.effective_at
        ),
    )
    await _send_receipt(work, account, plan)


async def _cancel_reduction(
    work: UnitOfWork, actor: Principal, account: Account, plan: SeatChangePlan, *, reason: str
) -> bool:
    """Drop the scheduled reduction read with `account`; False when there was none.

    `plan` keeps the total (kind NONE).
    """
    if account.scheduled_total is None:
        return False
    await _move(work, account, scheduled_total=None)
    await _audit_cancelled(work, actor, account, plan, reason=reason)
    await _send_receipt(work, account, plan)
    return True


async def _move(
    work: UnitOfWork, account: Account, *, also: dict[str, Any] | None = None, **values: Any
) -> None:
    """Write `values` on the account, only while the plan's inputs (and `also`)
    still hold; otherwise roll back and plan again."""
    unchanged: dict[str, Any] = {
        "id": account.id,
        "seats_total": account.seats_total,
        "period_index": account.period_index,
    }
    if account.scheduled_total is None:
        unchanged["scheduled_total__isnull"] = True
    else:
        unchanged["scheduled_total"] = account.scheduled_total
    moved = (
        await Account.filter(**unchanged, **(also or {})).using_db(work.connection).update(**values)
    )
    if moved != 1:
        raise _Moved


async def _audit_cancelled(
    work: UnitOfWork, actor: Principal, account: Account, plan: SeatChangePlan, *, reason: str
) -> None:
    await work.audit(
        actor=actor,
        action=AuditAction.SEAT_REDUCTION_CANCELLED,
        data={
            "scheduledTotal": account.scheduled_total,
            "total": plan.new_total,
            "reason": reason,
        },
    )
    await work.webhook(
        account_id=account.id,
        event_type=WebhookEventType.SEATS_REDUCTION_CANCELLED,
        data=seat_event_data(
            previous_total=account.scheduled_total or plan.new_total,
            total=plan.new_total,
            effective_at=work.now,
        ),
    )


async def _send_receipt(
    work: UnitOfWork, account: Account, plan: SeatChangePlan, *, charge: Charge | None = None
) -> None:
    # Totals and the effective instant are facts of this change that the
    # account row no longer shows later; the rest the job re-reads by id.
    await work.email(
        account_id=account.id,
        payload=SeatChangeReceiptPayload(
            account_id=account.id,
            recipient_user_id=await _owner_id(work, account.id),
            change_kind=plan.kind,
            previous_total=plan.current_total,
            new_total=plan.new_total,
            charge_id=charge.id if charge else None,
            effective_at=plan.effective_at,
        ),
    )


async def _owner_id(work: UnitOfWork, account_id: int) -> int | None:
    owner = (
        await User.filter(account_id=account_id, role=Role.OWNER)
        .using_db(work.connection)
        .only("id")
        .first()
    )
    return owner.id if owner else None
