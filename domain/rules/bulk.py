"""Bulk invitations: how many rows one request may carry, and how a dry run
foresees what inviting the rows one after the other would answer."""

from __future__ import annotations

from domain.errors import DomainError, ErrorCode

BULK_INVITE_MIN = 1
# A request of this many rows stays well inside the 1 MiB body limit and
# answers within seconds (each row is its own transaction).
BULK_INVITE_MAX = 500


def require_batch_size(count: int) -> None:
    """Refuse a bulk request with no row or more than BULK_INVITE_MAX, before any row is tried."""
    if not BULK_INVITE_MIN <= count <= BULK_INVITE_MAX:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"Send {BULK_INVITE_MIN} to {BULK_INVITE_MAX} invitations at once (got {count}).",
            field="inputs",
        )


class InviteForecast:
    """The refusal each valid row would meet if the rows were invited in order.

    Mirrors the business checks of an invitation after its input checks:
    EMAIL_TAKEN when the address is already in the account or was admitted by
    an earlier row, then NO_AVAILABLE_LICENSES once the licences free at the
    start are used up. A refused row takes nothing, so a later row may still
    be admitted.
    """

    def __init__(self, *, available: int) -> None:
        if available < 0:
            raise ValueError(f"available must be >= 0, got {available}")
        self.available = available
        self._admitted: set[str] = set()

    def admit(self, email_key: str, *, in_account: bool) -> ErrorCode | None:
        """The row's refusal, or None when it would be invited (and take a licence)."""
        if in_account or email_key in self._admitted:
            return ErrorCode.EMAIL_TAKEN
        if self.available == 0:
            return ErrorCode.NO_AVAILABLE_LICENSES
        self.available -= 1
        self._admitted.add(email_key)
        return None
