"""Table tests of the seat-change plan: kind, amount due, effective instant,
where an increase's charge starts, and the proration instant accepted."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.enums import SeatChangeKind
from domain.errors import DomainError, ErrorCode
from domain.rules.seat_change import SeatChangePlan, plan_seat_change, proration_instant

# April 2026: 30 days = 2_592_000 seconds.
START = datetime(2026, 4, 1, tzinfo=UTC)
END = datetime(2026, 5, 1, tzinfo=UTC)
MID = datetime(2026, 4, 16, tzinfo=UTC)  # 15 days left: exactly half
PRICE = 1_000


def plan(current: int, new: int, at: datetime, *, in_use: int = 1) -> SeatChangePlan:
    return plan_seat_change(
        current_total=current,
        new_total=new,
        in_use=in_use,
        seat_price_cents=PRICE,
        period_start=START,
        period_end=END,
        at=at,
    )


# (current, new, in_use, at, kind, amount, effective_at, charged_from, over)
PLAN_CASES = [
    # 3 added * 1000 * half the period = 1500.
    pytest.param(5, 8, 1, MID, SeatChangeKind.INCREASE, 1_500, MID, MID, 0,
                 id="increase-mid-period-half-price"),
    pytest.param(5, 6, 1, START, SeatChangeKind.INCREASE, 1_000, START, START, 0,
                 id="increase-at-start-whole-period"),
    # 1 * 1000 * 1 / 2_592_000 = 0.0004 -> 0 cents.
    pytest.param(5, 6, 1, END - timedelta(seconds=1), SeatChangeKind.INCREASE, 0,
                 END - timedelta(seconds=1), END - timedelta(seconds=1), 0,
                 id="increase-last-second-rounds-to-zero"),
    # 1 * 1000 * 1_296_001 / 2_592_000 = 500.0004 -> 500; one second earlier than MID.
    pytest.param(5, 6, 1, MID - timedelta(seconds=1), SeatChangeKind.INCREASE, 500,
                 MID - timedelta(seconds=1), MID - timedelta(seconds=1), 0,
                 id="increase-rounds-down-below-half-a-cent"),
    # 1 * 1000 * 1_296 / 2_592_000 = 0.5 -> half up to 1 cent.
    pytest.param(1, 2, 1, END - timedelta(seconds=1_296), SeatChangeKind.INCREASE, 1,
                 END - timedelta(seconds=1_296), END - timedelta(seconds=1_296), 0,
                 id="increase-half-a-cent-rounds-up"),
    # Outside the period, the span and the charge's start are clamped alike.
    pytest.param(5, 6, 1, START - timedelta(days=1), SeatChangeKind.INCREASE, 1_000,
                 START - timedelta(days=1), START, 0, id="increase-before-start-clamped"),
    pytest.param(5, 6, 1, END + timedelta(days=1), SeatChangeKind.INCREASE, 0,
                 END + timedelta(days=1), END, 0, id="increase-after-end-clamped"),
    # A reduction is free and waits for the period end.
    pytest.param(5, 3, 2, MID, SeatChangeKind.DECREASE, 0, END, MID, 0,
                 id="decrease-within-usage"),
    pytest.param(5, 3, 3, MID, SeatChangeKind.DECREASE, 0, END, MID, 0,
                 id="decrease-to-exactly-the-usage"),
    pytest.param(5, 2, 4, MID, SeatChangeKind.DECREASE, 0, END, MID, 2,
                 id="decrease-below-usage-counts-the-surplus"),
    pytest.param(5, 5, 5, MID, SeatChangeKind.NONE, 0, MID, MID, 0, id="same-total"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("current", "new", "in_use", "at", "kind", "amount", "effective_at", "charged_from", "over"),
    PLAN_CASES,
)
def test_plan_seat_change(
    current: int,
    new: int,
    in_use: int,
    at: datetime,
    kind: SeatChangeKind,
    amount: int,
    effective_at: datetime,
    charged_from: datetime,
    over: int,
) -> None:
    assert plan(current, new, at, in_use=in_use) == SeatChangePlan(
        kind=kind,
        current_total=current,
        new_total=new,
        amount_due_cents=amount,
        proration_date=at,
        effective_at=effective_at,
        charged_from=charged_from,
        licenses_over_new_total=over,
    )


NOW = datetime(2026, 4, 16, 12, 0, 30, 750_000, tzinfo=UTC)
TEN_MINUTES = timedelta(minutes=10)


# (requested, expected instant)
INSTANT_CASES = [
    pytest.param(None, NOW.replace(microsecond=0), id="none-is-now-without-fraction"),
    pytest.param(NOW - timedelta(minutes=3), (NOW - timedelta(minutes=3)).replace(microsecond=0),
                 id="recent-kept-without-fraction"),
    pytest.param(NOW.replace(microsecond=0) - TEN_MINUTES,
                 NOW.replace(microsecond=0) - TEN_MINUTES, id="exactly-the-maximum-age"),
    pytest.param(datetime(2026, 4, 16, 14, 0, 0, tzinfo=timezone(timedelta(hours=2))),
                 datetime(2026, 4, 16, 12, 0, 0, tzinfo=UTC), id="other-offset-read-as-utc"),
    pytest.param(NOW.replace(microsecond=999_999), NOW.replace(microsecond=0),
                 id="same-second-later-fraction-is-not-future"),
]  # fmt: skip


@pytest.mark.parametrize(("requested", "expected"), INSTANT_CASES)
def test_proration_instant(requested: datetime | None, expected: datetime) -> None:
    assert proration_instant(requested, now=NOW, max_age=TEN_MINUTES) == expected


# (requested, words of the message)
REFUSED_INSTANTS = [
    pytest.param(datetime(2026, 4, 16, 12, 0, 0), "UTC offset", id="naive"),
    pytest.param(NOW + timedelta(seconds=1), "future", id="next-second"),
    pytest.param(NOW.replace(microsecond=0) - TEN_MINUTES - timedelta(seconds=1), "10 minutes",
                 id="one-second-too-old"),
]  # fmt: skip


@pytest.mark.parametrize(("requested", "words"), REFUSED_INSTANTS)
def test_proration_instant_refused(requested: datetime, words: str) -> None:
    with pytest.raises(DomainError) as refused:
        proration_instant(requested, now=NOW, max_age=TEN_MINUTES)
    assert refused.value.code == ErrorCode.INVALID_INPUT
    assert refused.value.field == "prorationDate"
    assert words in refused.value.message
