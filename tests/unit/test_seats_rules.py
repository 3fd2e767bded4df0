"""Table tests of the seat rules: who holds a licence, change kind, overage and
the surplus release order."""

from datetime import UTC, datetime

import pytest

from domain.enums import SeatChangeKind, UserStatus
from domain.rules.seats import (
    LICENSED_STATUSES,
    SEAT_MAXIMUM,
    SEAT_MINIMUM,
    ReleaseCandidate,
    choose_released,
    holds_license,
    licenses_over,
    seat_change_kind,
)


def day(n: int) -> datetime:
    """Day n of January 2024, UTC: a readable, ordered timestamp."""
    return datetime(2024, 1, n, tzinfo=UTC)


# Default creation time of the candidates below, when it does not matter.
CREATED = day(1)


def invited(
    user_id: int, invited_on: datetime | None, created: datetime = CREATED
) -> ReleaseCandidate:
    return ReleaseCandidate(
        user_id=user_id,
        status=UserStatus.INVITED,
        is_owner=False,
        invitation_created_at=invited_on,
        last_active_at=None,
        created_at=created,
    )


def enabled(
    user_id: int, active_on: datetime | None, created: datetime = CREATED, *, owner: bool = False
) -> ReleaseCandidate:
    return ReleaseCandidate(
        user_id=user_id,
        status=UserStatus.ENABLED,
        is_owner=owner,
        invitation_created_at=None,
        last_active_at=active_on,
        created_at=created,
    )


def disabled(user_id: int, active_on: datetime | None = None) -> ReleaseCandidate:
    return ReleaseCandidate(
        user_id=user_id,
        status=UserStatus.DISABLED,
        is_owner=False,
        invitation_created_at=None,
        last_active_at=active_on,
        created_at=day(1),
    )


def test_seat_bounds_match_the_spec() -> None:
    assert (SEAT_MINIMUM, SEAT_MAXIMUM) == (1, 100_000)


@pytest.mark.parametrize(
    ("status", "licensed"),
    [
        pytest.param(UserStatus.INVITED, True, id="invited"),
        pytest.param(UserStatus.ENABLED, True, id="enabled"),
        pytest.param(UserStatus.DISABLED, False, id="disabled"),
    ],
)
def test_holds_license(status: UserStatus, licensed: bool) -> None:
    assert holds_license(status) is licensed
    assert (status in LICENSED_STATUSES) is licensed


@pytest.mark.parametrize(
    ("current", "new", "kind"),
    [
        pytest.param(10, 11, SeatChangeKind.INCREASE, id="one-more"),
        pytest.param(1, SEAT_MAXIMUM, SeatChangeKind.INCREASE, id="min-to-max"),
        pytest.param(10, 9, SeatChangeKind.DECREASE, id="one-less"),
        pytest.param(SEAT_MAXIMUM, SEAT_MINIMUM, SeatChangeKind.DECREASE, id="max-to-min"),
        pytest.param(10, 10, SeatChangeKind.NONE, id="same"),
    ],
)
def test_seat_change_kind(current: int, new: int, kind: SeatChangeKind) -> None:
    assert seat_change_kind(current, new) is kind


@pytest.mark.parametrize(
    ("total", "in_use", "over"),
    [
        pytest.param(10, 3, 0, id="room-left"),
        pytest.param(10, 10, 0, id="exactly-full"),
        pytest.param(10, 11, 1, id="one-over"),
        pytest.param(3, 10, 7, id="several-over"),
        pytest.param(1, 0, 0, id="nothing-in-use"),
    ],
)
def test_licenses_over(total: int, in_use: int, over: int) -> None:
    assert licenses_over(total, in_use) == over


# (candidates, surplus, expected released ids in order)
RELEASE_CASES = [
    pytest.param([invited(1, day(1)), enabled(2, None)], 0, [], id="surplus-zero-releases-nobody"),
    pytest.param([], 3, [], id="no-candidates"),
    # Invitations on days 1, 3, 2 -> newest first: 2 (day 3), 3 (day 2), 1 (day 1).
    pytest.param([invited(1, day(1)), invited(2, day(3)), invited(3, day(2))], 3, [2, 3, 1],
                 id="invited-newest-invitation-first"),
    # Same invitation instant: higher user id first.
    pytest.param([invited(5, day(2)), invited(7, day(2)), invited(6, day(1))], 3, [7, 5, 6],
                 id="invited-tie-by-user-id-desc"),
    # Every INVITED user goes before any ENABLED one, even one never active.
    pytest.param([enabled(1, None), invited(2, day(1)), enabled(3, day(1))], 1, [2],
                 id="invited-before-enabled"),
    # Never active (2) first, then oldest activity: 3 (day 1), then 1 (day 5).
    pytest.param([enabled(1, day(5)), enabled(2, None), enabled(3, day(1))], 3, [2, 3, 1],
                 id="enabled-never-active-then-least-recent"),
    # Several never active: oldest creation first (3 and 5 on day 1, by id), then 4 (day 2).
    pytest.param([enabled(4, None, day(2)), enabled(5, None, day(1)), enabled(3, None, day(1))],
                 3, [3, 5, 4], id="never-active-tie-by-created-then-id"),
    # Same last activity: oldest creation first (9, day 1), then by id (6 before 8, day 2).
    pytest.param([enabled(8, day(7), day(2)), enabled(6, day(7), day(2)),
                  enabled(9, day(7), day(1))],
                 3, [9, 6, 8], id="same-activity-tie-by-created-then-id"),
    # The owner, never active, would otherwise be first.
    pytest.param([enabled(1, None, owner=True), enabled(2, day(3))], 2, [2],
                 id="owner-never-released"),
    # DISABLED users hold no licence: nothing to release.
    pytest.param([disabled(1), disabled(2, day(1)), enabled(3, day(9))], 3, [3],
                 id="disabled-never-chosen"),
    # Only the owner and disabled users remain eligible... none of them is.
    pytest.param([enabled(1, None, owner=True), disabled(2)], 2, [],
                 id="nothing-eligible"),
    # Surplus larger than the eligible users: all eligible, still in order.
    pytest.param([enabled(1, day(2)), invited(2, day(1)), enabled(3, day(1))], 10, [2, 3, 1],
                 id="surplus-above-eligible-returns-all"),
    # Mixed account, surplus 4: invited 12 (day 4), 11 (day 2); then never active 14;
    # then 13 (active day 3) before 15 (day 8). Owner 10 and disabled 16 untouched.
    pytest.param([enabled(10, None, owner=True), invited(11, day(2)), invited(12, day(4)),
                  enabled(13, day(3)), enabled(14, None), enabled(15, day(8)), disabled(16)],
                 4, [12, 11, 14, 13], id="mixed-account-cut-at-surplus"),
    # Missing invitation time falls back to creation: 2 (created day 5) is newer than
    # 1 (invited day 3).
    pytest.param([invited(1, day(3)), invited(2, None, day(5))], 2, [2, 1],
                 id="invited-without-invitation-time-uses-created"),
]  # fmt: skip


@pytest.mark.parametrize(("candidates", "surplus", "expected"), RELEASE_CASES)
def test_choose_released(
    candidates: list[ReleaseCandidate], surplus: int, expected: list[int]
) -> None:
    assert choose_released(candidates, surplus) == expected


@pytest.mark.parametrize(("candidates", "surplus", "expected"), RELEASE_CASES)
def test_choose_released_ignores_input_order(
    candidates: list[ReleaseCandidate], surplus: int, expected: list[int]
) -> None:
    assert choose_released(list(reversed(candidates)), surplus) == expected


def test_choose_released_rejects_negative_surplus() -> None:
    with pytest.raises(ValueError, match="surplus"):
        choose_released([enabled(1, None)], -1)
