"""Renewing an account at a period end: the period that begins, and its charge.

Both ways the period-end job closes a period (one account at a time, or a
batch of plain renewals at once) take the roll and the amount from here.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.enums import BillingInterval
from domain.rules.periods import period_bounds


@dataclass(frozen=True, slots=True)
class NextPeriod:
    index: int
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Renewal:
    period: NextPeriod
    quantity: int
    unit_amount_cents: int
    amount_cents: int


def next_period(anchor: datetime, interval: BillingInterval, closing_index: int) -> NextPeriod:
    """The period that follows period `closing_index` of an account anchored on `anchor`."""
    start, end = period_bounds(anchor, interval, closing_index + 1)
    return NextPeriod(index=closing_index + 1, start=start, end=end)


def price_renewal(period: NextPeriod, *, seats_total: int, seat_price_cents: int) -> Renewal:
    """A whole period of every licence, on the total after any reduction."""
    return Renewal(
        period=period,
        quantity=seats_total,
        unit_amount_cents=seat_price_cents,
        amount_cents=seats_total * seat_price_cents,
    )


def renewal_audit_data(renewal: Renewal, *, currency: str, charge_id: int | None) -> dict[str, Any]:
    """What the PERIOD_RENEWED audit event records."""
    return {
        "periodIndex": renewal.period.index,
        "periodStart": renewal.period.start.isoformat(),
        "periodEnd": renewal.period.end.isoformat(),
        "quantity": renewal.quantity,
        "amountCents": renewal.amount_cents,
        "currency": currency,
        "chargeId": charge_id,
    }
