"""Table tests of the renewal rule: the period that begins and what it costs."""

from datetime import UTC, datetime

import pytest

from domain.enums import BillingInterval
from domain.rules.money import SEAT_PRICE_MAX_CENTS
from domain.rules.renewal import NextPeriod, next_period, price_renewal, renewal_audit_data
from domain.rules.seats import SEAT_MAXIMUM


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# (anchor, interval, closing index, expected next period)
PERIOD_CASES = [
    pytest.param(utc(2026, 1, 31, 12), BillingInterval.MONTH, 0,
                 NextPeriod(1, utc(2026, 1, 31, 12), utc(2026, 2, 28, 12)),
                 id="after-jan-31-ends-feb-28"),
    pytest.param(utc(2026, 1, 31, 12), BillingInterval.MONTH, 1,
                 NextPeriod(2, utc(2026, 2, 28, 12), utc(2026, 3, 31, 12)),
                 id="anchor-day-comes-back-in-march"),
    pytest.param(utc(2024, 2, 29), BillingInterval.YEAR, 0,
                 NextPeriod(1, utc(2024, 2, 29), utc(2025, 2, 28)), id="leap-day-year"),
    pytest.param(utc(2026, 4, 10, 12), BillingInterval.MONTH, 5,
                 NextPeriod(6, utc(2026, 9, 10, 12), utc(2026, 10, 10, 12)),
                 id="several-periods-in"),
]  # fmt: skip


@pytest.mark.parametrize(("anchor", "interval", "closing", "expected"), PERIOD_CASES)
def test_next_period(
    anchor: datetime, interval: BillingInterval, closing: int, expected: NextPeriod
) -> None:
    assert next_period(anchor, interval, closing) == expected


PERIOD = NextPeriod(1, utc(2026, 4, 10), utc(2026, 5, 10))


# (seats, price, amount)
AMOUNT_CASES = [
    pytest.param(5, 1_000, 5_000, id="plain"),
    pytest.param(1, 0, 0, id="free"),
    pytest.param(SEAT_MAXIMUM, SEAT_PRICE_MAX_CENTS, 9_007_199_254_700_000, id="largest"),
]


@pytest.mark.parametrize(("seats", "price", "amount"), AMOUNT_CASES)
def test_price_renewal(seats: int, price: int, amount: int) -> None:
    renewal = price_renewal(PERIOD, seats_total=seats, seat_price_cents=price)
    assert (renewal.period, renewal.quantity, renewal.unit_amount_cents) == (PERIOD, seats, price)
    assert renewal.amount_cents == amount
    assert amount <= 2**53 - 1


def test_renewal_audit_data() -> None:
    renewal = price_renewal(PERIOD, seats_total=3, seat_price_cents=1_000)
    assert renewal_audit_data(renewal, currency="EUR", charge_id=7) == {
        "periodIndex": 1,
        "periodStart": "2026-04-10T00:00:00+00:00",
        "periodEnd": "2026-05-10T00:00:00+00:00",
        "quantity": 3,
        "amountCents": 3_000,
        "currency": "EUR",
        "chargeId": 7,
    }
