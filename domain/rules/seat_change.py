"""What setting the seat count does, decided before anything is written.

The preview and the change both call `plan_seat_change` with the same
inputs, so a client that passes the preview's proration instant back is
charged exactly the previewed amount.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.enums import SeatChangeKind
from domain.errors import DomainError, ErrorCode
from domain.rules.proration import prorated_amount_cents, proration_span
from domain.rules.seats import licenses_over, seat_change_kind


@dataclass(frozen=True, slots=True)
class SeatChangePlan:
    kind: SeatChangeKind
    current_total: int
    new_total: int
    amount_due_cents: int
    # The instant the amount was computed at (a whole second).
    proration_date: datetime
    # The proration instant for an increase or no change; the period end
    # for a reduction.
    effective_at: datetime
    # Where an increase's charge starts: the proration instant, clamped
    # into the period exactly as the proration span is.
    charged_from: datetime
    licenses_over_new_total: int


def plan_seat_change(
    *,
    current_total: int,
    new_total: int,
    in_use: int,
    seat_price_cents: int,
    period_start: datetime,
    period_end: datetime,
    at: datetime,
) -> SeatChangePlan:
    """The plan for moving from `current_total` to `new_total` licences at `at`."""
    kind = seat_change_kind(current_total, new_total)
    amount = 0
    effective_at = at
    if kind is SeatChangeKind.INCREASE:
        remaining, length = proration_span(period_start=period_start, period_end=period_end, at=at)
        amount = prorated_amount_cents(
            added_seats=new_total - current_total,
            seat_price_cents=seat_price_cents,
            remaining_seconds=remaining,
            period_seconds=length,
        )
    elif kind is SeatChangeKind.DECREASE:
        effective_at = period_end
    return SeatChangePlan(
        kind=kind,
        current_total=current_total,
        new_total=new_total,
        amount_due_cents=amount,
        proration_date=at,
        effective_at=effective_at,
        charged_from=min(max(at, period_start), period_end),
        licenses_over_new_total=licenses_over(new_total, in_use),
    )


def proration_instant(requested: datetime | None, *, now: datetime, max_age: timedelta) -> datetime:
    """The whole second the amount is computed at: the requested one, or now.

    A requested instant must carry a UTC offset, lie in the past and be at
    most `max_age` old (a stale preview is previewed again); INVALID_INPUT
    otherwise.
    """
    now_second = now.astimezone(UTC).replace(microsecond=0)
    if requested is None:
        return now_second
    if requested.tzinfo is None or requested.utcoffset() is None:
        raise _bad_date("The proration date needs a UTC offset.")
    at = requested.astimezone(UTC).replace(microsecond=0)
    if at > now_second:
        raise _bad_date("The proration date is in the future.")
    if now_second - at > max_age:
        minutes = int(max_age.total_seconds() // 60)
        raise _bad_date(
            f"The proration date is more than {minutes} minutes old; preview the change again."
        )
    return at


def _bad_date(message: str) -> DomainError:
    return DomainError(ErrorCode.INVALID_INPUT, message, field="prorationDate")
