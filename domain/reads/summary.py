"""The licence summary of an account: purchased, in use, available, scheduled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.enums import UserStatus
from domain.models import Account, User
from domain.principal import Principal


@dataclass(frozen=True, slots=True)
class LicenseSummary:
    total: int
    in_use: int
    available: int
    # None: not counted (a COUNT that grows with the account; see
    # domain.reads.batches.pending_invitation_counts, and license_summary which counts).
    pending_invitations: int | None
    scheduled_total: int | None
    scheduled_at: datetime | None
    released_at_scheduled_change: int


def summarize(account: Account, *, pending_invitations: int | None) -> LicenseSummary:
    """The summary from an account row and its count of INVITED users, if
    counted (no I/O)."""
    scheduled = account.scheduled_total
    return LicenseSummary(
        total=account.seats_total,
        in_use=account.seats_in_use,
        available=max(0, account.seats_total - account.seats_in_use),
        pending_invitations=pending_invitations,
        scheduled_total=scheduled,
        scheduled_at=account.current_period_end if scheduled is not None else None,
        released_at_scheduled_change=(
            max(0, account.seats_in_use - scheduled) if scheduled is not None else 0
        ),
    )


async def license_summary(*, account: Account) -> LicenseSummary:
    """One statement: the count of INVITED users (the owner's password-set link
    does not count: the owner is ENABLED)."""
    pending = await User.filter(account_id=account.id, status=UserStatus.INVITED).count()
    return summarize(account, pending_invitations=pending)


async def license_summary_for(*, actor: Principal) -> LicenseSummary:
    """A fresh summary of the actor's account (two statements), e.g. after a change."""
    account = await Account.get(id=actor.account_id)
    return await license_summary(account=account)
