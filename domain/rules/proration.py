"""Proration of a seat increase over the rest of the current billing period."""

from datetime import datetime, timedelta

_SECOND = timedelta(seconds=1)


def _require_aware(name: str, value: datetime) -> None:
    # Mixing naive and aware instants would either raise deep inside the
    # arithmetic or, worse, silently assume the server's local zone.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value!r}")


def _whole_seconds(delta: timedelta) -> int:
    # Floor division keeps this in integers; timedelta.total_seconds() is a
    # float and would lose precision on long spans.
    return delta // _SECOND


def proration_span(
    *, period_start: datetime, period_end: datetime, at: datetime
) -> tuple[int, int]:
    """Return (remaining_seconds, period_seconds) of the period as seen from `at`.

    `at` loses its fraction of a second first, so a preview and the charge that
    follows it agree to the cent. Remaining is clamped to [0, period_seconds].
    """
    _require_aware("period_start", period_start)
    _require_aware("period_end", period_end)
    _require_aware("at", at)
    if period_end <= period_start:
        raise ValueError(f"period_end {period_end!r} must be after period_start {period_start!r}")

    at = at.replace(microsecond=0)
    period_seconds = _whole_seconds(period_end - period_start)
    remaining = _whole_seconds(period_end - at)
    return min(max(remaining, 0), period_seconds), period_seconds


def prorated_amount_cents(
    *, added_seats: int, seat_price_cents: int, remaining_seconds: int, period_seconds: int
) -> int:
    """Return added * price * remaining / period in cents, rounded half up.

    Integers only: the numerator reaches ~10^20 for the largest accounts, far
    beyond what a float represents exactly.
    """
    if added_seats < 0:
        raise ValueError(f"added_seats must be >= 0, got {added_seats}")
    if seat_price_cents < 0:
        raise ValueError(f"seat_price_cents must be >= 0, got {seat_price_cents}")
    if period_seconds <= 0:
        raise ValueError(f"period_seconds must be > 0, got {period_seconds}")
    if not 0 <= remaining_seconds <= period_seconds:
        raise ValueError(
            f"remaining_seconds must be in [0, {period_seconds}], got {remaining_seconds}"
        )

    quotient, remainder = divmod(added_seats * seat_price_cents * remaining_seconds, period_seconds)
    # Half up: a remainder of at least half the divisor rounds to the next cent.
    # All operands are non-negative, so "up" and "away from zero" coincide.
    if 2 * remainder >= period_seconds:
        quotient += 1
    return quotient
