"""Seat rules: who holds a licence, bounds, kind of change, and who loses a
licence on a reduction."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.enums import SeatChangeKind, UserStatus

SEAT_MINIMUM = 1
SEAT_MAXIMUM = 100_000

# The statuses that hold one of the account's licences (`inUse` counts them).
# An INVITED user holds it already: the invitation took it.
LICENSED_STATUSES: tuple[UserStatus, ...] = (UserStatus.INVITED, UserStatus.ENABLED)


def holds_license(status: UserStatus) -> bool:
    """Whether a user in `status` holds a licence."""
    return status in LICENSED_STATUSES


def seat_change_kind(current_total: int, new_total: int) -> SeatChangeKind:
    """Classify a requested seat total against the current one."""
    if new_total > current_total:
        return SeatChangeKind.INCREASE
    if new_total < current_total:
        return SeatChangeKind.DECREASE
    return SeatChangeKind.NONE


def licenses_over(total: int, in_use: int) -> int:
    """Return how many licences in use exceed `total` (0 when within it)."""
    return max(0, in_use - total)


@dataclass(frozen=True, slots=True)
class ReleaseCandidate:
    """What the release order needs to know about a user holding a licence."""

    user_id: int
    status: UserStatus
    is_owner: bool
    invitation_created_at: datetime | None
    last_active_at: datetime | None
    created_at: datetime


def choose_released(candidates: Sequence[ReleaseCandidate], surplus: int) -> list[int]:
    """Return the ids of up to `surplus` users to release, in release order.

    INVITED users go first, newest invitation first: they have not started
    using the product, and the latest invitation is the least settled. Then
    ENABLED non-owners by least recent activity. DISABLED users hold no
    licence and the owner must keep one, so neither is ever chosen.
    """
    if surplus < 0:
        raise ValueError(f"surplus must be >= 0, got {surplus}")
    if surplus == 0:
        return []

    eligible = [c for c in candidates if not c.is_owner]
    invited = [c for c in eligible if c.status is UserStatus.INVITED]
    enabled = [c for c in eligible if c.status is UserStatus.ENABLED]

    # An INVITED user always has an invitation; should the timestamp be
    # missing, the user's creation time is the closest stand-in (both are
    # written in the same transaction by an invite).
    invited.sort(key=lambda c: (c.invitation_created_at or c.created_at, c.user_id), reverse=True)

    never_active = sorted(
        (c for c in enabled if c.last_active_at is None),
        key=lambda c: (c.created_at, c.user_id),
    )
    # Sorting the active ones apart avoids comparing None with datetimes.
    active = sorted(
        (c for c in enabled if c.last_active_at is not None),
        key=lambda c: (c.last_active_at, c.created_at, c.user_id),
    )

    ordered = [*invited, *never_active, *active]
    return [c.user_id for c in ordered[:surplus]]
