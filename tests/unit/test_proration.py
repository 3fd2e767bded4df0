"""Table tests of the proration rule: span in whole seconds, amount rounded half up."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.rules.proration import prorated_amount_cents, proration_span

# January 2024: 31 days = 31 * 86_400 = 2_678_400 seconds; half = 1_339_200.
JAN_START = datetime(2024, 1, 1, tzinfo=UTC)
JAN_END = datetime(2024, 2, 1, tzinfo=UTC)
JAN_SECONDS = 2_678_400

# 2024 is a leap year: 366 days = 31_622_400 s. 2025 is common: 365 days = 31_536_000 s.
LEAP_YEAR_START = datetime(2024, 1, 1, tzinfo=UTC)
LEAP_YEAR_END = datetime(2025, 1, 1, tzinfo=UTC)
COMMON_YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
COMMON_YEAR_END = datetime(2026, 1, 1, tzinfo=UTC)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# (start, end, at, added, price_cents, remaining_s, period_s, amount_cents)
PRORATION_CASES = [
    pytest.param(
        # Nothing used yet: 3 * 1000 * 2_678_400 / 2_678_400 = 3000 exactly.
        JAN_START, JAN_END, JAN_START, 3, 1_000, JAN_SECONDS, JAN_SECONDS, 3_000,
        id="first-second-of-period-full-amount",
    ),
    pytest.param(
        # 10 * 9_999_999 * 1 / 2_678_400 = 99_999_990 / 2_678_400 = 37.3357 -> 37.
        JAN_START, JAN_END, utc(2024, 1, 31, 23, 59, 59), 10, 9_999_999, 1, JAN_SECONDS, 37,
        id="last-second-of-period-one-second-left",
    ),
    pytest.param(
        # 23:59:59.999999 drops to 23:59:59, so one whole second is left, not zero:
        # 1 * 2_678_400 * 1 / 2_678_400 = 1 cent exactly.
        JAN_START, JAN_END, utc(2024, 1, 31, 23, 59, 59, 999_999), 1, JAN_SECONDS, 1,
        JAN_SECONDS, 1,
        id="one-microsecond-before-end-still-one-second-left",
    ),
    pytest.param(
        # 5 * 1000 * 0 / 2_678_400 = 0.
        JAN_START, JAN_END, JAN_END, 5, 1_000, 0, JAN_SECONDS, 0,
        id="exactly-at-end-nothing-left",
    ),
    pytest.param(
        # Past the end: remaining -86_400 clamps to 0.
        JAN_START, JAN_END, JAN_END + timedelta(days=1), 5, 1_000, 0, JAN_SECONDS, 0,
        id="after-end-clamped-to-zero",
    ),
    pytest.param(
        # Before the start: remaining 2_682_000 clamps to the period, 5 * 1000 = 5000.
        JAN_START, JAN_END, JAN_START - timedelta(hours=1), 5, 1_000, JAN_SECONDS,
        JAN_SECONDS, 5_000,
        id="before-start-clamped-to-full-period",
    ),
    pytest.param(
        # Feb 1 00:00 - Jan 16 12:00 = 15.5 days = 1_339_200 s, half the period:
        # 1 * 1 * 1_339_200 / 2_678_400 = 0.5 -> 1 (half up).
        JAN_START, JAN_END, utc(2024, 1, 16, 12), 1, 1, 1_339_200, JAN_SECONDS, 1,
        id="exact-half-cent-rounds-up",
    ),
    pytest.param(
        # One second later: 1_339_199 / 2_678_400 = 0.49999963 -> 0.
        JAN_START, JAN_END, utc(2024, 1, 16, 12, 0, 1), 1, 1, 1_339_199, JAN_SECONDS, 0,
        id="just-under-half-cent-rounds-down",
    ),
    pytest.param(
        # 12:00:00.5 drops to 12:00:00, so remaining is 1_339_200 -> 0.5 -> 1. Without
        # the truncation it would be 1_339_199.5 s -> 0.49999981 -> 0.
        JAN_START, JAN_END, utc(2024, 1, 16, 12, 0, 0, 500_000), 1, 1, 1_339_200,
        JAN_SECONDS, 1,
        id="microseconds-of-at-truncated",
    ),
    pytest.param(
        # Jul 2 -> Jan 1 is 183 days = 15_811_200 s, exactly half of 366 days:
        # 1 * 12_001 * 15_811_200 / 31_622_400 = 6000.5 -> 6001.
        LEAP_YEAR_START, LEAP_YEAR_END, utc(2024, 7, 2), 1, 12_001, 15_811_200, 31_622_400,
        6_001,
        id="year-leap-366-days-half-rounds-up",
    ),
    pytest.param(
        # Jul 2 -> Jan 1 is 183 days = 15_811_200 s of 365 days:
        # 2 * 36_500 * 183 / 365 = 73_000 / 365 * 183 = 200 * 183 = 36_600 exactly.
        COMMON_YEAR_START, COMMON_YEAR_END, utc(2025, 7, 2), 2, 36_500, 15_811_200,
        31_536_000, 36_600,
        id="year-common-365-days",
    ),
    pytest.param(
        # 100_000 * 10^9 * 1 / 31_536_000 = 10^14 / 31_536_000 = 3_170_979.198 -> 3_170_979.
        COMMON_YEAR_START, COMMON_YEAR_END, utc(2025, 12, 31, 23, 59, 59), 100_000,
        1_000_000_000, 1, 31_536_000, 3_170_979,
        id="year-one-second-left-max-seats",
    ),
    pytest.param(
        # 100_000 * 10^9 * 2_678_399 / 2_678_400 = 10^14 - 10^14 / 2_678_400
        # = 10^14 - 37_335_722.8196 = 99_999_962_664_277.18 -> 99_999_962_664_277.
        # The numerator (~2.7e20) is beyond a float's 2^53 exact range.
        JAN_START, JAN_END, JAN_START + timedelta(seconds=1), 100_000, 1_000_000_000,
        2_678_399, JAN_SECONDS, 99_999_962_664_277,
        id="large-100000-seats-huge-price",
    ),
    pytest.param(
        # 0 * 1000 * 1_339_200 / 2_678_400 = 0.
        JAN_START, JAN_END, utc(2024, 1, 16, 12), 0, 1_000, 1_339_200, JAN_SECONDS, 0,
        id="zero-added-seats",
    ),
    pytest.param(
        # Leap February period Jan 31 -> Feb 29 = 29 days = 2_505_600 s; Feb 15 -> Feb 29
        # is 14 days = 1_209_600 s: 1 * 2_900 * 14 / 29 = 1_400 exactly.
        utc(2024, 1, 31), utc(2024, 2, 29), utc(2024, 2, 15), 1, 2_900, 1_209_600,
        2_505_600, 1_400,
        id="leap-february-period",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("start", "end", "at", "added", "price", "remaining", "period", "amount"),
    PRORATION_CASES,
)
def test_proration_span_and_amount(
    start: datetime,
    end: datetime,
    at: datetime,
    added: int,
    price: int,
    remaining: int,
    period: int,
    amount: int,
) -> None:
    span = proration_span(period_start=start, period_end=end, at=at)
    assert span == (remaining, period)

    cents = prorated_amount_cents(
        added_seats=added, seat_price_cents=price, remaining_seconds=span[0], period_seconds=span[1]
    )
    assert cents == amount


# (added, price_cents, remaining_s, period_s, amount_cents)
ROUNDING_CASES = [
    # 1 * 4_999 * 1 / 10_000 = 0.4999 -> 0.
    pytest.param(1, 4_999, 1, 10_000, 0, id="0.4999-rounds-down"),
    # 1 * 5_000 * 1 / 10_000 = 0.5 -> 1.
    pytest.param(1, 5_000, 1, 10_000, 1, id="0.5-rounds-up"),
    # 1 * 14_999 * 1 / 10_000 = 1.4999 -> 1.
    pytest.param(1, 14_999, 1, 10_000, 1, id="1.4999-rounds-down"),
    # 5 * 1 * 1 / 2 = 2.5 -> 3; banker's rounding would give 2.
    pytest.param(5, 1, 1, 2, 3, id="2.5-rounds-up-not-to-even"),
    # 3 * 700 * 10 / 10 = 2_100, no fraction.
    pytest.param(3, 700, 10, 10, 2_100, id="whole-period-no-fraction"),
    # 99_999 * 999_999_999 * 1 / 2 = 99_998_999_900_001 / 2 = 49_999_499_950_000.5
    # -> 49_999_499_950_001 (round() on a float would give ...000, the even one).
    pytest.param(99_999, 999_999_999, 1, 2, 49_999_499_950_001, id="huge-exact-half"),
    # 100_000 * 10^9 * 0 / 2_678_400 = 0.
    pytest.param(100_000, 1_000_000_000, 0, JAN_SECONDS, 0, id="nothing-remaining"),
    # 7 * 0 * 5 / 9 = 0: a free plan charges nothing.
    pytest.param(7, 0, 5, 9, 0, id="zero-price"),
]


@pytest.mark.parametrize(("added", "price", "remaining", "period", "amount"), ROUNDING_CASES)
def test_prorated_amount_rounds_half_up(
    added: int, price: int, remaining: int, period: int, amount: int
) -> None:
    cents = prorated_amount_cents(
        added_seats=added,
        seat_price_cents=price,
        remaining_seconds=remaining,
        period_seconds=period,
    )
    assert cents == amount
    assert isinstance(cents, int)


@pytest.mark.parametrize("naive", ["period_start", "period_end", "at"])
def test_proration_span_rejects_naive_datetimes(naive: str) -> None:
    values = {"period_start": JAN_START, "period_end": JAN_END, "at": utc(2024, 1, 10)}
    values[naive] = values[naive].replace(tzinfo=None)

    with pytest.raises(ValueError, match=naive):
        proration_span(**values)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param(JAN_START, JAN_START, id="empty"),
        pytest.param(JAN_END, JAN_START, id="reversed"),
    ],
)
def test_proration_span_rejects_empty_or_reversed_period(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError, match="must be after"):
        proration_span(period_start=start, period_end=end, at=JAN_START)


@pytest.mark.parametrize(
    ("added", "price", "remaining", "period"),
    [
        pytest.param(-1, 100, 1, 10, id="negative-seats"),
        pytest.param(1, -100, 1, 10, id="negative-price"),
        pytest.param(1, 100, -1, 10, id="negative-remaining"),
        pytest.param(1, 100, 11, 10, id="remaining-longer-than-period"),
        pytest.param(1, 100, 0, 0, id="zero-period"),
    ],
)
def test_prorated_amount_rejects_out_of_range_inputs(
    added: int, price: int, remaining: int, period: int
) -> None:
    with pytest.raises(ValueError):
        prorated_amount_cents(
            added_seats=added,
            seat_price_cents=price,
            remaining_seconds=remaining,
            period_seconds=period,
        )
