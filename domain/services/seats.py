"""Changing the seat count: a prorated increase now, or a reduction at the period end.

The preview and the change run the same pure function, `_plan`, on the same
account row and the same proration instant, so a client that passes the
preview's `prorationDate` back gets exactly the previewed amount.

Concurrency: every write is a conditional UPDATE on the values the plan was
computed from (total, period, scheduled reduction, and for a reduction the
licences in use). When another request moved one of them in between, the
transaction is rolled back and the plan computed again from fresh values (a
few attempts), so an amount is never charged on a stale total or period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain import config
from domain.clock import Clock
from domain.enums import AuditAction, ChargeKind, EmailKind, Role, SeatChangeKind
from domain.errors import DomainError, ErrorCode
from domain.models import Account, Charge, User
from domain.principal import Principal, require_admin
from domain.rules.proration import prorated_amount_cents, proration_span
from domain.rules.seats import SEAT_MAXIMUM, SEAT_MINIMUM, licenses_over, seat_change_kind
from domain.uow import UnitOfWork, unit_of_work

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
    # The proration instant for an increase or no change; the end of the
    # current period for a reduction.
    effective_at: datetime
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


def _plan(account: Account, total: int, at: datetime) -> SeatChangePreview:
    """What setting the seat count to `total` at the instant `at` does. Pure."""
    kind = seat_change_kind(account.seats_total, total)
    amount = 0
    effective_at = at
    if kind is SeatChangeKind.INCREASE:
        remaining, length = proration_span(
            period_start=account.current_period_start,
            period_end=account.current_period_end,
            at=at,
        )
        amount = prorated_amount_cents(
            added_seats=total - account.seats_total,
            seat_price_cents=account.seat_price_cents,
            remaining_seconds=remaining,
            period_seconds=length,
        )
    elif kind is SeatChangeKind.DECREASE:
        effective_at = account.current_period_end
    return SeatChangePreview(
        kind=kind,
        current_total=account.seats_total,
        new_total=total,
        amount_due_now_cents=amount,
        currency=account.currency,
        proration_date=at,
        effective_at=effective_at,
        agreement_version=config.AGREEMENT_VERSION,
        licenses_over_new_total=licenses_over(total, account.seats_in_use),
    )


def _check_total(total: int) -> None:
    if not SEAT_MINIMUM <= total <= SEAT_MAXIMUM:
        raise DomainError(
            ErrorCode.SEAT_LIMIT,
            f"The number of licences must be {SEAT_MINIMUM}..{SEAT_MAXIMUM}.",
            field="total",
        )


def _proration_instant(proration_date: datetime | None, now: datetime) -> datetime:
    """The whole second the amount is computed at: the input's, or now."""
    now_second = now.astimezone(UTC).replace(microsecond=0)
    if proration_date is None:
        return now_second
    if proration_date.tzinfo is None or proration_date.utcoffset() is None:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "The proration date needs a UTC offset.", field="prorationDate"
        )
    at = proration_date.astimezone(UTC).replace(microsecond=0)
    if at > now_second:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "The proration date is in the future.", field="prorationDate"
        )
    max_age = config.current().proration_max_age
    if now_second - at > max_age:
        minutes = int(max_age.total_seconds() // 60)
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"The proration date is more than {minutes} minutes old; preview the change again.",
            field="prorationDate",
        )
    return at


def _as_read(account: Account) -> dict[str, Any]:
    """Filter matching the account only while the plan's inputs are unchanged."""
    unchanged: dict[str, Any] = {
        "id": account.id,
        "seats_total": account.seats_total,
        "period_index": account.period_index,
    }
    if account.scheduled_total is None:
        unchanged["scheduled_total__isnull"] = True
    else:
        unchanged["scheduled_total"] = account.scheduled_total
    return unchanged


async def _owner_id(work: UnitOfWork, account_id: int) -> int | None:
    owner = (
        await User.filter(account_id=account_id, role=Role.OWNER)
        .using_db(work.connection)
        .only("id")
        .first()
    )
    return owner.id if owner else None


async def _send_receipt(
    work: UnitOfWork,
    *,
    account: Account,
    kind: SeatChangeKind,
    previous_total: int,
    new_total: int,
    effective_at: datetime,
    charge: Charge | None,
) -> None:
    # Totals and the effective instant are facts of this change that the
    # account row no longer shows later; the rest the job re-reads by id.
    await work.email(
        account_id=account.id,
        kind=EmailKind.SEAT_CHANGE_RECEIPT,
        payload={
            "accountId": account.id,
            "recipientUserId": await _owner_id(work, account.id),
            "kind": kind.value,
            "previousTotal": previous_total,
            "newTotal": new_total,
            "chargeId": charge.id if charge else None,
            "effectiveAt": effective_at.isoformat(),
        },
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
    return _plan(account, total, at)


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
                if plan.kind is SeatChangeKind.INCREASE:
                    charge = await _increase(work, actor, account, plan)
                elif plan.kind is SeatChangeKind.DECREASE:
                    charge = None
                    await _schedule_reduction(work, actor, account, plan)
                else:
                    charge = None
                    await _cancel_reduction(
                        work, actor, account, plan, reason="SAME_TOTAL_REQUESTED"
                    )
                account = await Account.get(id=actor.account_id, using_db=work.connection)
        except _Moved:
            continue
        return SeatChangeOutcome(account=account, charge=charge)
    raise SeatChangeConflict("The seat count kept changing; try again.")


def _check_expected_amount(plan: SeatChangePreview, expected: int | None) -> None:
    if expected is not None and expected != plan.amount_due_now_cents:
        raise DomainError(
            ErrorCode.AMOUNT_MISMATCH,
            f"The amount due now is {plan.amount_due_now_cents}, not {expected}.",
            field="expectedAmountDueCents",
        )


async def _increase(
    work: UnitOfWork, actor: Principal, account: Account, plan: SeatChangePreview
) -> Charge:
    moved = (
        await Account.filter(**_as_read(account))
        .using_db(work.connection)
        .update(seats_total=plan.new_total, scheduled_total=None)
    )
    if moved != 1:
        raise _Moved
    # The charge covers the proration instant to the period end; an instant
    # outside the period (clamped by the proration rule) is clamped alike.
    span_start = min(
        max(plan.proration_date, account.current_period_start), account.current_period_end
    )
    added = plan.new_total - plan.current_total
    charge = await Charge.create(
        account_id=account.id,
        kind=ChargeKind.SEAT_INCREASE,
        quantity=added,
        unit_amount_cents=account.seat_price_cents,
        amount_cents=plan.amount_due_now_cents,
        currency=account.currency,
        period_start=span_start,
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
            "amountCents": plan.amount_due_now_cents,
            "currency": account.currency,
            "prorationDate": plan.proration_date.isoformat(),
            "chargeId": charge.id,
        },
    )
    if account.scheduled_total is not None:
        await work.audit(
            actor=actor,
            action=AuditAction.SEAT_REDUCTION_CANCELLED,
            data={
                "scheduledTotal": account.scheduled_total,
                "total": plan.new_total,
                "reason": "SEATS_INCREASED",
            },
        )
    await _send_receipt(
        work,
        account=account,
        kind=plan.kind,
        previous_total=plan.current_total,
        new_total=plan.new_total,
        effective_at=plan.effective_at,
        charge=charge,
    )
    return charge


async def _schedule_reduction(
    work: UnitOfWork, actor: Principal, account: Account, plan: SeatChangePreview
) -> None:
    if plan.licenses_over_new_total > 0:
        raise DomainError(
            ErrorCode.SEATS_BELOW_USAGE,
            f"{account.seats_in_use} licences are in use; release some before reducing to "
            f"{plan.new_total}.",
            field="total",
        )
    moved = (
        await Account.filter(**_as_read(account), seats_in_use__lte=plan.new_total)
        .using_db(work.connection)
        .update(scheduled_total=plan.new_total)
    )
    if moved != 1:
        # Re-planned from fresh values: licences taken meanwhile give
        # SEATS_BELOW_USAGE on the next attempt.
        raise _Moved
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
    await _send_receipt(
        work,
        account=account,
        kind=plan.kind,
        previous_total=plan.current_total,
        new_total=plan.new_total,
        effective_at=plan.effective_at,
        charge=None,
    )


async def _cancel_reduction(
    work: UnitOfWork,
    actor: Principal,
    account: Account,
    plan: SeatChangePreview | None,
    *,
    reason: str,
) -> bool:
    """Drop the scheduled reduction read with `account`; False when there was none."""
    if account.scheduled_total is None:
        return False
    moved = (
        await Account.filter(**_as_read(account))
        .using_db(work.connection)
        .update(scheduled_total=None)
    )
    if moved != 1:
        raise _Moved
    await work.audit(
        actor=actor,
        action=AuditAction.SEAT_REDUCTION_CANCELLED,
        data={
            "scheduledTotal": account.scheduled_total,
            "total": account.seats_total,
            "reason": reason,
        },
    )
    await _send_receipt(
        work,
        account=account,
        kind=SeatChangeKind.NONE,
        previous_total=account.seats_total,
        new_total=account.seats_total,
        effective_at=plan.effective_at if plan else work.now,
        charge=None,
    )
    return True


async def cancel_scheduled_seat_change(*, actor: Principal, clock: Clock) -> Account:
    """Drop the scheduled reduction; without effect (nor audit) when none is scheduled."""
    require_admin(actor)
    now = clock.now()
    for _ in range(_MAX_ATTEMPTS):
        try:
            async with unit_of_work(now) as work:
                account = await Account.get(id=actor.account_id, using_db=work.connection)
                if await _cancel_reduction(work, actor, account, None, reason="CANCELLED"):
                    account = await Account.get(id=actor.account_id, using_db=work.connection)
        except _Moved:
            continue
        return account
    raise SeatChangeConflict("The seat count kept changing; try again.")
