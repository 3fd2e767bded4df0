"""Money amounts a JavaScript client reads exactly.

JSON numbers become IEEE doubles in a browser: integers above 2**53 - 1 lose
their last digits after JSON.parse. Every amount the service computes is at
most (seats) x (seat price) for one whole period (a renewal; a prorated
increase is smaller), and seats are at most SEAT_MAXIMUM, so capping the seat
price keeps every amount exact.
"""

from domain.errors import DomainError, ErrorCode
from domain.rules.seats import SEAT_MAXIMUM

JS_SAFE_INTEGER_MAX = 2**53 - 1
SEAT_PRICE_MAX_CENTS = JS_SAFE_INTEGER_MAX // SEAT_MAXIMUM


def check_seat_price_cents(cents: int, *, field: str = "seatPriceCents") -> int:
    """The price, if 0..SEAT_PRICE_MAX_CENTS; otherwise INVALID_INPUT naming the field."""
    if not 0 <= cents <= SEAT_PRICE_MAX_CENTS:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"The seat price must be 0..{SEAT_PRICE_MAX_CENTS} cents, so that "
            f"{SEAT_MAXIMUM} seats for a whole period stay within 2^53 - 1.",
            field=field,
        )
    return cents
