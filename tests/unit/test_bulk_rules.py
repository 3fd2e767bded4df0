"""Table tests of the bulk rules: the size of a request, and the dry run's
foresight of each row (taken email, then licences)."""

import pytest

from domain.errors import DomainError, ErrorCode
from domain.rules.bulk import InviteForecast, require_batch_size

E = ErrorCode.EMAIL_TAKEN
N = ErrorCode.NO_AVAILABLE_LICENSES


@pytest.mark.parametrize(
    ("count", "allowed"),
    [(0, False), (1, True), (2, True), (499, True), (500, True), (501, False), (-1, False)],
)
def test_require_batch_size(count: int, allowed: bool) -> None:
    if allowed:
        require_batch_size(count)
        return
    with pytest.raises(DomainError) as refused:
        require_batch_size(count)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID_INPUT, "inputs")


# (licences free at the start, rows as (email key, already in the account), answers)
FORECAST_CASES = [
    pytest.param(2, [("a", False), ("b", False)], [None, None], id="room-for-all"),
    pytest.param(1, [("a", False), ("b", False), ("c", False)], [None, N, N], id="beyond"),
    pytest.param(0, [("a", False)], [N], id="none-free"),
    pytest.param(3, [("a", False), ("a", False)], [None, E], id="duplicate-in-file"),
    pytest.param(3, [("a", True)], [E], id="in-the-account"),
    # A taken email is reported before the licence count, as invite_user does.
    pytest.param(0, [("a", True)], [E], id="taken-before-licences"),
    # A refused row takes nothing: the next row gets the licence...
    pytest.param(1, [("a", True), ("b", False)], [E, None], id="refused-takes-nothing"),
    # ...and an address refused for want of a licence is not taken by it.
    pytest.param(1, [("a", False), ("b", False), ("b", False)], [None, N, N], id="not-taken"),
]


@pytest.mark.parametrize(("available", "rows", "answers"), FORECAST_CASES)
def test_invite_forecast(
    available: int, rows: list[tuple[str, bool]], answers: list[ErrorCode | None]
) -> None:
    forecast = InviteForecast(available=available)

    found = [forecast.admit(key, in_account=in_account) for key, in_account in rows]

    assert found == answers


def test_invite_forecast_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="available"):
        InviteForecast(available=-1)
