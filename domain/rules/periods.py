"""Billing period boundaries, anchored on the account's first period end.

Period `index` ends at anchor + index intervals and starts one interval
earlier; index 0 is the first period. Every boundary is computed from the
anchor, never from the previous boundary, so a short month does not shorten
all the months after it (Jan 31 -> Feb 28 -> Mar 31, not Mar 28).
"""

import calendar
from datetime import datetime, timedelta

from domain.enums import BillingInterval

_MONTHS_PER_INTERVAL: dict[BillingInterval, int] = {
    BillingInterval.MONTH: 1,
    BillingInterval.YEAR: 12,
}


def _require_utc(name: str, value: datetime) -> None:
    # Calendar arithmetic in a zone with DST would move the time of day; the
    # whole service stores UTC, so anything else is a caller bug.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware UTC, got naive {value!r}")
    if value.utcoffset() != timedelta(0):
        raise ValueError(f"{name} must be UTC, got offset {value.utcoffset()} in {value!r}")


def shift(anchor: datetime, interval: BillingInterval, count: int) -> datetime:
    """Return anchor moved by `count` intervals (may be negative), day clamped to the month."""
    _require_utc("anchor", anchor)
    months = anchor.year * 12 + (anchor.month - 1) + count * _MONTHS_PER_INTERVAL[interval]
    year, month_zero_based = divmod(months, 12)
    month = month_zero_based + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period_bounds(
    anchor: datetime, interval: BillingInterval, index: int
) -> tuple[datetime, datetime]:
    """Return (start, end) of period `index`; index 0 ends at the anchor."""
    return shift(anchor, interval, index - 1), shift(anchor, interval, index)


def seconds_in_period(anchor: datetime, interval: BillingInterval, index: int) -> int:
    """Return the length of period `index` in whole seconds."""
    start, end = period_bounds(anchor, interval, index)
    return (end - start) // timedelta(seconds=1)


def periods_due(
    anchor: datetime, interval: BillingInterval, current_index: int, now: datetime
) -> list[int]:
    """Return the indexes, from `current_index` on, of the periods that have ended at `now`.

    A period whose end equals `now` has ended: its last instant is exclusive.
    The period-end job closes them one by one, in this order.
    """
    _require_utc("now", now)
    due: list[int] = []
    index = current_index
    while shift(anchor, interval, index) <= now:
        due.append(index)
        index += 1
    return due
