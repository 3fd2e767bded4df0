"""Reclaiming inactive licences: who the policy applies to, and what is due when.

Pure functions; the job (domain.services.reclaim) and the preview
(domain.reads.reclaim) both decide through `plan`, so the preview cannot
drift from what the job does.

A user's inactivity window starts at the later of its last authenticated
request and the start of its current licence assignment (`inactive_since`);
the licence is due for release `inactive_days` later. With `notice_days` > 0
the user is emailed `notice_days` before, and nobody loses a licence without
that notice: a user noticed late (the policy was just enabled, or the job did
not run) keeps the licence `notice_days` past its notice. Activity opens a new
window, which gets its own notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from domain.enums import Role, UserStatus
from domain.errors import DomainError, ErrorCode

INACTIVE_DAYS_MIN, INACTIVE_DAYS_MAX = 14, 365
NOTICE_DAYS_MIN, NOTICE_DAYS_MAX = 0, 30
EXEMPT_USERS_MAX = 1000
# The policy an account has until an administrator sets one.
DEFAULT_INACTIVE_DAYS = 90
DEFAULT_NOTICE_DAYS = 7


@dataclass(frozen=True, slots=True)
class PolicyTerms:
    enabled: bool
    inactive_days: int
    notice_days: int
    exempt_admins: bool
    exempt_user_ids: frozenset[int]

    @property
    def inactivity(self) -> timedelta:
        return timedelta(days=self.inactive_days)

    @property
    def notice(self) -> timedelta:
        return timedelta(days=self.notice_days)

    @property
    def watch_from(self) -> timedelta:
        """How long after its window opens a user first needs the job's attention."""
        return self.inactivity - self.notice if self.notice_days else self.inactivity


DEFAULT_TERMS = PolicyTerms(
    enabled=False,
    inactive_days=DEFAULT_INACTIVE_DAYS,
    notice_days=DEFAULT_NOTICE_DAYS,
    exempt_admins=True,
    exempt_user_ids=frozenset(),
)


def check_terms(*, inactive_days: int, notice_days: int, exempt_user_count: int) -> None:
    """Refuse (INVALID_INPUT, with the field) terms outside the SPEC's ranges."""
    if not INACTIVE_DAYS_MIN <= inactive_days <= INACTIVE_DAYS_MAX:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"inactiveDays must be {INACTIVE_DAYS_MIN}..{INACTIVE_DAYS_MAX}.",
            field="inactiveDays",
        )
    if not NOTICE_DAYS_MIN <= notice_days <= NOTICE_DAYS_MAX:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"noticeDays must be {NOTICE_DAYS_MIN}..{NOTICE_DAYS_MAX}.",
            field="noticeDays",
        )
    if notice_days >= inactive_days:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            "noticeDays must be shorter than inactiveDays.",
            field="noticeDays",
        )
    if exempt_user_count > EXEMPT_USERS_MAX:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"At most {EXEMPT_USERS_MAX} exempt users.",
            field="exemptUserIds",
        )


def is_covered(terms: PolicyTerms, *, user_id: int, role: Role, status: UserStatus) -> bool:
    """Whether the policy can release this user's licence at all.

    Only ENABLED users: INVITED ones are left to invitation expiry, DISABLED
    ones hold nothing. Never the owner; admins when the policy exempts them.
    """
    if status != UserStatus.ENABLED or role == Role.OWNER:
        return False
    if terms.exempt_admins and role == Role.ADMIN:
        return False
    return user_id not in terms.exempt_user_ids


def inactive_since(last_active_at: datetime | None, assigned_at: datetime) -> datetime:
    """The later of the last authenticated request and the assignment's start."""
    if last_active_at is None:
        return assigned_at
    return max(last_active_at, assigned_at)


class Step(Enum):
    WAIT = "WAIT"
    NOTICE = "NOTICE"
    RELEASE = "RELEASE"


@dataclass(frozen=True, slots=True)
class Plan:
    step: Step
    inactive_since: datetime
    # When the licence goes if nothing changes (for a user still owed its
    # notice: `notice_days` after the notice the next run would send).
    release_at: datetime
    # When the notice is (or was) due; None when the policy sends none.
    notice_at: datetime | None


def plan(
    terms: PolicyTerms,
    *,
    since: datetime,
    noticed_at: datetime | None,
    now: datetime,
) -> Plan:
    """What is due now for a covered user whose window opened at `since`.

    `noticed_at`: when this window's notice was sent, None if it was not.
    """
    due = since + terms.inactivity
    if not terms.notice_days:
        step = Step.RELEASE if due <= now else Step.WAIT
        return Plan(step=step, inactive_since=since, release_at=due, notice_at=None)
    notice_at = due - terms.notice
    if noticed_at is not None:
        release_at = max(due, noticed_at + terms.notice)
        step = Step.RELEASE if release_at <= now else Step.WAIT
    elif notice_at <= now:
        release_at = max(due, now + terms.notice)
        step = Step.NOTICE
    else:
        release_at = due
        step = Step.WAIT
    return Plan(step=step, inactive_since=since, release_at=release_at, notice_at=notice_at)


def why_notice_is_moot(
    *,
    status: UserStatus,
    last_active_at: datetime | None,
    noticed_window: datetime,
    policy_enabled: bool,
) -> str | None:
    """Why a reclaim notice decided earlier is no longer to be sent (None: send it)."""
    if status != UserStatus.ENABLED:
        return "the user no longer holds the licence"
    if last_active_at is not None and last_active_at > noticed_window:
        return "the user has been active since the notice was decided"
    if not policy_enabled:
        return "the reclaim policy was disabled"
    return None
