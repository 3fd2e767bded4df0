"""The bulk invitation service: rows through invite_user one by one, and the dry
run that foresees them without writing."""

from __future__ import annotations

import pytest

from domain.errors import ErrorCode
from domain.principal import Principal
from domain.services.bulk_invitations import (
    InvitationRequest,
    forecast_each,
    invite_each,
    invite_users,
)
from tests.domain.users_support import PAST_EXPIRY, fill_account, seats
from tests.support.assertions import refused, refused_unchanged
from tests.support.snapshot import database_snapshot

pytestmark = pytest.mark.anyio


def rows(*emails: str) -> list[InvitationRequest]:
    return [
        InvitationRequest(email=email, first_name="Row", last_name="Person") for email in emails
    ]


async def forecast(actor: Principal, clock, requests: list[InvitationRequest]) -> list[str | None]:
    return [
        error.code.value if error else None
        async for error in forecast_each(actor=actor, requests=requests, clock=clock)
    ]


async def invited(actor: Principal, clock, requests: list[InvitationRequest]) -> list[str | None]:
    return [
        result.error.code.value if result.error else None
        async for result in invite_each(actor=actor, requests=requests, clock=clock)
    ]


async def test_given_a_full_account_with_an_overdue_invitation_then_the_forecast_counts_its_licence(
    account, owner, clock
):
    # 5 licences: the owner and 4 invitations, all taken; one invitation expires.
    await fill_account(owner, clock, 4)
    clock.advance(PAST_EXPIRY)
    requests = rows("new1@example.com", "new2@example.com", "new3@example.com")
    before = await database_snapshot()

    foreseen = await forecast(owner, clock, requests)

    assert await database_snapshot() == before
    # Every filler expired (same age): four licences come back when the first row is invited.
    assert foreseen == [None, None, None]
    assert await invited(owner, clock, requests) == foreseen
    assert await seats(account) == (4, 5)


async def test_given_the_same_rows_then_the_dry_run_foresees_what_the_run_answers(
    account, owner, clock
):
    await fill_account(owner, clock, 2)  # 3 of 5 in use
    requests = rows(
        "a@example.com", "filler0@example.com", "bad", "A@example.com", "b@example.com", "c@x.io"
    )

    foreseen = await forecast(owner, clock, requests)
    answered = await invited(owner, clock, requests)

    assert (
        foreseen
        == answered
        == [
            None,
            ErrorCode.EMAIL_TAKEN.value,
            ErrorCode.INVALID_INPUT.value,
            ErrorCode.EMAIL_TAKEN.value,
            None,
            ErrorCode.NO_AVAILABLE_LICENSES.value,
        ]
    )


async def test_given_an_account_that_does_not_exist_then_not_found_before_any_row(db, clock):
    ghost = Principal.system(424242)

    await refused(invited(ghost, clock, rows("a@example.com")), ErrorCode.NOT_FOUND)


async def test_given_501_rows_then_invite_users_refuses_and_changes_nothing(account, owner, clock):
    requests = rows(*(f"r{number}@example.com" for number in range(501)))

    await refused_unchanged(
        invite_users(actor=owner, requests=requests, clock=clock),
        ErrorCode.INVALID_INPUT,
        field="inputs",
    )
