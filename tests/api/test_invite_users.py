"""inviteUsers through the real ASGI app and database: each row applied on its
own, in input order; a request of 0 or more than 500 rows refused whole; one
Idempotency-Key for the whole request."""

from __future__ import annotations

from typing import Any

import pytest

from domain.enums import ActorKind, AuditAction, UserStatus
from domain.models import Account, AuditEvent, Invitation, User
from tests.support.http_client import gql, payload_of, post, warm_up
from tests.support.principals import Principals
from tests.support.snapshot import database_snapshot

pytestmark = pytest.mark.anyio

INVITE_USERS = """
mutation Bulk($inputs: [InviteUserInput!]!) {
  inviteUsers(inputs: $inputs) {
    results {
      user { email name role status qualification }
      invitation { status email }
      licenses { inUse available }
      errors { code message field }
    }
    licenses { total inUse available pendingInvitations }
    errors { code message field }
  }
}
"""


def row(email: str, first: str = "Bulk", last: str = "Invitee", **extra: Any) -> dict[str, Any]:
    return {"email": email, "firstName": first, "lastName": last, **extra}


async def invite_users(client, token: str | None, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    body = await gql(client, INVITE_USERS, token=token, variables={"inputs": inputs})
    return payload_of(body, "inviteUsers")


def outcome(result: dict[str, Any]) -> str:
    """A row's result in one word: its error code, or the email invited."""
    if result["errors"]:
        return result["errors"][0]["code"]
    return result["user"]["email"]


async def emails_of(account_id: int) -> set[str]:
    return set(await User.filter(account_id=account_id).values_list("email", flat=True))


async def test_given_good_and_bad_rows_when_invited_then_each_result_in_input_order(
    client, principals
):
    # Acme: 5 licences, 3 in use (owner, Adam, Mia): room for two more.
    before = await emails_of(principals.account_id)

    payload = await invite_users(
        client,
        principals.admin_token,
        [
            row("nia@example.com", "Nia", "New", role="ADMIN", qualification="CPA"),
            row("MIA@example.com"),
            row("not-an-email"),
            row("noor@example.com", "Noor", "Next"),
            row("nia@example.com"),
            row("late@example.com"),
            row("owner-to-be@example.com", role="OWNER"),
        ],
    )

    assert payload["errors"] == []
    results = payload["results"]
    assert [outcome(result) for result in results] == [
        "nia@example.com",
        "EMAIL_TAKEN",
        "INVALID_INPUT",
        "noor@example.com",
        "EMAIL_TAKEN",
        "NO_AVAILABLE_LICENSES",
        "OWNER_ROLE_IMMUTABLE",
    ]
    assert results[0]["user"] == {
        "email": "nia@example.com",
        "name": "Nia New",
        "role": "ADMIN",
        "status": "INVITED",
        "qualification": "CPA",
    }
    assert results[0]["invitation"] == {"status": "PENDING", "email": "nia@example.com"}
    assert [result["errors"][0]["field"] for result in results[1:3]] == ["email", "email"]
    assert results[5]["errors"][0]["message"] == "Every purchased licence is in use."
    # A refused row is inviteUser's refusal: one error, the other fields null.
    assert results[1] == {
        "user": None,
        "invitation": None,
        "licenses": None,
        "errors": [results[1]["errors"][0]],
    }
    # Every row's licences, like the request's, are the summary after all rows.
    assert results[0]["licenses"] == results[3]["licenses"] == {"inUse": 5, "available": 0}
    assert payload["licenses"] == {"total": 5, "inUse": 5, "available": 0, "pendingInvitations": 2}
    assert await emails_of(principals.account_id) == before | {
        "nia@example.com",
        "noor@example.com",
    }
    invited = await AuditEvent.filter(
        account_id=principals.account_id, action=AuditAction.USER_INVITED
    ).values_list("actor_kind", "actor_user_id")
    assert invited[-2:] == [(ActorKind.USER, principals.admin_id)] * 2


async def test_given_an_api_token_when_inviting_in_bulk_then_the_rows_are_invited(
    client, principals
):
    payload = await invite_users(
        client, principals.api_token, [row("t1@example.com"), row("t2@example.com")]
    )

    assert [outcome(result) for result in payload["results"]] == [
        "t1@example.com",
        "t2@example.com",
    ]
    statuses = await User.filter(email__in=["t1@example.com", "t2@example.com"]).values_list(
        "status", flat=True
    )
    assert statuses == [UserStatus.INVITED, UserStatus.INVITED]
    assert await Invitation.filter(email__in=["t1@example.com", "t2@example.com"]).count() == 2


async def refused_whole(client, token: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """A request refused as a whole: one error, no result, no licences, nothing written."""
    await warm_up(client, token)
    before = await database_snapshot()

    payload = await invite_users(client, token, inputs)

    assert payload["results"] == []
    assert payload["licenses"] is None
    assert len(payload["errors"]) == 1, payload
    assert await database_snapshot() == before
    error: dict[str, Any] = payload["errors"][0]
    return error


async def test_given_501_rows_when_invited_then_the_request_is_refused_and_no_row_tried(
    client, principals
):
    inputs = [row(f"many-{number}@example.com") for number in range(501)]

    error = await refused_whole(client, principals.owner_token, inputs)

    assert error["code"] == "INVALID_INPUT"
    assert error["field"] == "inputs"
    assert "1 to 500" in error["message"]


async def test_given_no_row_when_invited_then_the_request_is_refused(client, principals):
    error = await refused_whole(client, principals.owner_token, [])

    assert error["code"] == "INVALID_INPUT"
    assert error["field"] == "inputs"


async def test_given_a_member_when_inviting_in_bulk_then_forbidden_and_nothing_changes(
    client, principals
):
    error = await refused_whole(client, principals.member_token, [row("m1@example.com")])

    assert error["code"] == "FORBIDDEN"


async def test_given_a_member_sending_501_rows_then_forbidden_comes_first(client, principals):
    inputs = [row(f"many-{number}@example.com") for number in range(501)]

    error = await refused_whole(client, principals.member_token, inputs)

    assert error["code"] == "FORBIDDEN"


async def test_given_500_rows_and_room_when_invited_then_all_500_are_invited(client, principals):
    await warm_up(client, principals.owner_token)
    await _seats(principals, 503)
    inputs = [row(f"full-{number:03d}@example.com") for number in range(500)]

    payload = await invite_users(client, principals.owner_token, inputs)

    assert payload["errors"] == []
    assert [outcome(result) for result in payload["results"]] == [
        f"full-{number:03d}@example.com" for number in range(500)
    ]
    assert payload["licenses"]["available"] == 0
    assert await User.filter(account_id=principals.account_id).count() == 503


async def _seats(principals: Principals, total: int) -> None:
    """Room for a test: the seat count written straight to the account."""
    await Account.filter(id=principals.account_id).update(seats_total=total)


async def test_given_a_key_when_retried_then_the_results_replay_and_nobody_is_invited_twice(
    client, principals
):
    variables = {"inputs": [row("once@example.com"), row("MIA@example.com")]}
    headers = {"Idempotency-Key": "bulk-1"}

    first = await post(
        client, INVITE_USERS, token=principals.owner_token, variables=variables, headers=headers
    )
    invitations = await Invitation.filter(account_id=principals.account_id).count()
    retry = await post(
        client, INVITE_USERS, token=principals.owner_token, variables=variables, headers=headers
    )

    assert first.status_code == retry.status_code == 200
    assert [outcome(r) for r in first.json()["data"]["inviteUsers"]["results"]] == [
        "once@example.com",
        "EMAIL_TAKEN",
    ]
    assert retry.headers.get("idempotent-replayed") == "true"
    assert retry.content == first.content
    assert await User.filter(email="once@example.com").count() == 1
    assert await Invitation.filter(account_id=principals.account_id).count() == invitations
    # Without the key the same rows run again: the email is taken by then.
    again = await invite_users(client, principals.owner_token, variables["inputs"])
    assert [outcome(result) for result in again["results"]] == ["EMAIL_TAKEN", "EMAIL_TAKEN"]


async def test_given_the_same_key_with_other_rows_then_refused_and_nothing_runs(client, principals):
    headers = {"Idempotency-Key": "bulk-2"}
    await post(
        client,
        INVITE_USERS,
        token=principals.owner_token,
        variables={"inputs": [row("k1@example.com")]},
        headers=headers,
    )

    reused = await post(
        client,
        INVITE_USERS,
        token=principals.owner_token,
        variables={"inputs": [row("k2@example.com")]},
        headers=headers,
    )

    codes = [error["extensions"]["code"] for error in reused.json()["errors"]]
    assert codes == ["IDEMPOTENCY_KEY_REUSED"]
    assert await User.filter(email="k2@example.com").count() == 0
