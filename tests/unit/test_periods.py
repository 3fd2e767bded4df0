"""Table tests of billing period boundaries anchored on the first period end."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.enums import BillingInterval
from domain.rules.periods import period_bounds, periods_due, seconds_in_period, shift

MONTH = BillingInterval.MONTH
YEAR = BillingInterval.YEAR


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# (anchor, interval, count, expected)
SHIFT_CASES = [
    pytest.param(utc(2023, 1, 31, 10, 30, 15), MONTH, 0, utc(2023, 1, 31, 10, 30, 15),
                 id="zero-is-anchor"),
    # 2023 is common: February has 28 days, so Jan 31 clamps to Feb 28.
    pytest.param(utc(2023, 1, 31, 10, 30, 15), MONTH, 1, utc(2023, 2, 28, 10, 30, 15),
                 id="jan31-common-year-feb28"),
    # Computed from the anchor, not from Feb 28: back to the 31st.
    pytest.param(utc(2023, 1, 31, 10, 30, 15), MONTH, 2, utc(2023, 3, 31, 10, 30, 15),
                 id="jan31-then-mar31-not-chained"),
    pytest.param(utc(2023, 1, 31, 10, 30, 15), MONTH, 3, utc(2023, 4, 30, 10, 30, 15),
                 id="jan31-then-apr30"),
    # 2024 is leap: Feb 29 exists.
    pytest.param(utc(2024, 1, 31), MONTH, 1, utc(2024, 2, 29), id="jan31-leap-year-feb29"),
    pytest.param(utc(2024, 1, 31), MONTH, 2, utc(2024, 3, 31), id="jan31-leap-year-mar31"),
    # Dec 15 + 1 month crosses into the next year.
    pytest.param(utc(2024, 12, 15, 8), MONTH, 1, utc(2025, 1, 15, 8), id="dec-to-jan-rollover"),
    # 13 months from Dec 31: 2026-01-31.
    pytest.param(utc(2024, 12, 31), MONTH, 13, utc(2026, 1, 31), id="thirteen-months"),
    # Backwards over the year boundary: Jan 15 - 1 month = Dec 15 of the year before.
    pytest.param(utc(2025, 1, 15, 8), MONTH, -1, utc(2024, 12, 15, 8), id="jan-back-to-dec"),
    # Mar 31 - 1 month clamps into February (2023 common -> 28).
    pytest.param(utc(2023, 3, 31), MONTH, -1, utc(2023, 2, 28), id="negative-clamps-day"),
    # Feb 29 + 1 year: 2025 has no Feb 29 -> Feb 28.
    pytest.param(utc(2024, 2, 29, 12), YEAR, 1, utc(2025, 2, 28, 12), id="feb29-plus-1y-feb28"),
    pytest.param(utc(2024, 2, 29, 12), YEAR, 2, utc(2026, 2, 28, 12), id="feb29-plus-2y-feb28"),
    # Feb 29 + 4 years: 2028 is leap, back to Feb 29.
    pytest.param(utc(2024, 2, 29, 12), YEAR, 4, utc(2028, 2, 29, 12), id="feb29-plus-4y-feb29"),
    pytest.param(utc(2024, 2, 29, 12), YEAR, -1, utc(2023, 2, 28, 12), id="feb29-minus-1y"),
    pytest.param(utc(2024, 2, 29, 12), YEAR, -4, utc(2020, 2, 29, 12), id="feb29-minus-4y"),
    # Time of day, down to the microsecond, is kept.
    pytest.param(utc(2024, 6, 30, 23, 59, 59, 123), YEAR, 1, utc(2025, 6, 30, 23, 59, 59, 123),
                 id="keeps-time-of-day"),
]  # fmt: skip


@pytest.mark.parametrize(("anchor", "interval", "count", "expected"), SHIFT_CASES)
def test_shift(anchor: datetime, interval: BillingInterval, count: int, expected: datetime) -> None:
    shifted = shift(anchor, interval, count)

    assert shifted == expected
    assert shifted.tzinfo is UTC


# (anchor, interval, index, expected_start, expected_end)
BOUNDS_CASES = [
    # Index 0 is the first period: it ends at the anchor, one interval after its start.
    pytest.param(utc(2024, 1, 31), MONTH, 0, utc(2023, 12, 31), utc(2024, 1, 31),
                 id="first-period-ends-at-anchor"),
    pytest.param(utc(2024, 1, 31), MONTH, 1, utc(2024, 1, 31), utc(2024, 2, 29),
                 id="second-period-leap-february"),
    # Start is anchor + 1 month (Feb 29), end anchor + 2 months (Mar 31), not Feb 29 + 1.
    pytest.param(utc(2024, 1, 31), MONTH, 2, utc(2024, 2, 29), utc(2024, 3, 31),
                 id="third-period-not-chained"),
    # The period before the first: [anchor - 2 months, anchor - 1 month] = [Nov 30, Dec 31].
    pytest.param(utc(2024, 1, 31), MONTH, -1, utc(2023, 11, 30), utc(2023, 12, 31),
                 id="negative-index-before-first"),
    pytest.param(utc(2024, 2, 29, 9), YEAR, 1, utc(2024, 2, 29, 9), utc(2025, 2, 28, 9),
                 id="year-after-leap-day"),
    pytest.param(utc(2024, 2, 29, 9), YEAR, 4, utc(2027, 2, 28, 9), utc(2028, 2, 29, 9),
                 id="year-ending-on-next-leap-day"),
]  # fmt: skip


@pytest.mark.parametrize(("anchor", "interval", "index", "start", "end"), BOUNDS_CASES)
def test_period_bounds(
    anchor: datetime, interval: BillingInterval, index: int, start: datetime, end: datetime
) -> None:
    assert period_bounds(anchor, interval, index) == (start, end)


def test_consecutive_periods_share_boundaries() -> None:
    anchor = utc(2023, 1, 31, 6, 45)
    for index in range(-24, 24):
        _, end = period_bounds(anchor, MONTH, index)
        next_start, _ = period_bounds(anchor, MONTH, index + 1)
        assert end == next_start


# (anchor, interval, index, expected_seconds)
SECONDS_CASES = [
    # Jan 31 -> Feb 28, 2023: 28 days * 86_400 = 2_419_200.
    pytest.param(utc(2023, 1, 31), MONTH, 1, 2_419_200, id="february-common"),
    # Jan 31 -> Feb 29, 2024: 29 days * 86_400 = 2_505_600.
    pytest.param(utc(2024, 1, 31), MONTH, 1, 2_505_600, id="february-leap"),
    # Feb 29 -> Mar 31, 2024: 31 days * 86_400 = 2_678_400.
    pytest.param(utc(2024, 1, 31), MONTH, 2, 2_678_400, id="march-after-leap-february"),
    # Feb 28 2023 -> Feb 29 2024 (anchor Feb 29 2024, index 0): 366 days = 31_622_400.
    pytest.param(utc(2024, 2, 29), YEAR, 0, 31_622_400, id="year-ending-leap-day"),
    # Feb 29 2024 -> Feb 28 2025: 365 days = 31_536_000.
    pytest.param(utc(2024, 2, 29), YEAR, 1, 31_536_000, id="year-after-leap-day"),
]


@pytest.mark.parametrize(("anchor", "interval", "index", "seconds"), SECONDS_CASES)
def test_seconds_in_period(
    anchor: datetime, interval: BillingInterval, index: int, seconds: int
) -> None:
    assert seconds_in_period(anchor, interval, index) == seconds


# Anchor Jan 31 2024 10:00, monthly: period ends are
#   index 0: Jan 31, 1: Feb 29, 2: Mar 31, 3: Apr 30, 4: May 31 (all 10:00).
DUE_ANCHOR = utc(2024, 1, 31, 10)

# (current_index, now, expected_indexes)
DUE_CASES = [
    # Current period 1 ends Feb 29 10:00; one second before it nothing is due.
    pytest.param(1, utc(2024, 2, 29, 9, 59, 59), [], id="not-yet-ended"),
    # The end is exclusive: at exactly Feb 29 10:00 period 1 has ended.
    pytest.param(1, utc(2024, 2, 29, 10), [1], id="end-equal-to-now-counts"),
    pytest.param(1, utc(2024, 3, 15), [1], id="one-period-behind"),
    # Ends Feb 29, Mar 31, Apr 30 are all <= May 1; May 31 is not.
    pytest.param(1, utc(2024, 5, 1), [1, 2, 3], id="three-periods-behind"),
    # Apr 30 10:00 is exactly now: three periods, the last one on the boundary.
    pytest.param(1, utc(2024, 4, 30, 10), [1, 2, 3], id="three-behind-last-on-boundary"),
    # A new account still in its first period (ends Jan 31 10:00).
    pytest.param(0, utc(2024, 1, 20), [], id="first-period-running"),
    pytest.param(0, utc(2024, 1, 31, 10), [0], id="first-period-just-ended"),
]


@pytest.mark.parametrize(("current_index", "now", "expected"), DUE_CASES)
def test_periods_due(current_index: int, now: datetime, expected: list[int]) -> None:
    assert periods_due(DUE_ANCHOR, MONTH, current_index, now) == expected


def test_periods_due_yearly_across_leap_day() -> None:
    # Ends: 0 Feb 29 2024, 1 Feb 28 2025, 2 Feb 28 2026, 3 Feb 28 2027, 4 Feb 29 2028.
    anchor = utc(2024, 2, 29)

    assert periods_due(anchor, YEAR, 1, utc(2028, 2, 28, 23, 59, 59)) == [1, 2, 3]
    assert periods_due(anchor, YEAR, 1, utc(2028, 2, 29)) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(datetime(2024, 1, 31), id="naive"),
        pytest.param(datetime(2024, 1, 31, tzinfo=timezone(timedelta(hours=2))), id="not-utc"),
    ],
)
def test_non_utc_datetimes_are_rejected(value: datetime) -> None:
    with pytest.raises(ValueError, match="UTC"):
        shift(value, MONTH, 1)
    with pytest.raises(ValueError, match="UTC"):
        periods_due(DUE_ANCHOR, MONTH, 0, value)
