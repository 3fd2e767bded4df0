"""Every mutation through the real ASGI app and database: its success and every
refusal it can give, with the payload's shape.

A refusal: exactly one {code, message, field} error, every other payload field
null, and the database unchanged. A success: errors [] and the documented
fields non-null.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from domain import config
from domain.enums import Role, UserStatus
from domain.models import Account, ApiToken, Charge, Invitation, Session, User
from domain.security import invitation_token
from domain.services import invitations
from tests.support.assertions import Failures, assert_refused, assert_succeeded
from tests.support.factories import PASSWORD, accept_pending_invitation
from tests.support.http_client import gql, payload_of, refused_without_change, top_codes
from tests.support.principals import Principals, owner_principal

pytestmark = pytest.mark.anyio

AGREEMENT = config.AGREEMENT_VERSION
VIEWER = "{ viewer { id role } }"

INVITE = """
mutation Invite($input: InviteUserInput!) {
  inviteUser(input: $input) {
    user { id email role status hasLicense qualification }
    invitation { id status email expiresAt }
    licenses { total inUse available pendingInvitations }
    errors { code message field }
  }
}
"""
RESEND = """
mutation Resend($userId: ID!) {
  resendInvitation(userId: $userId) {
    user { id status }
    invitation { id status expiresAt }
    licenses { inUse available pendingInvitations }
    errors { code message field }
  }
}
"""
REVOKE = RESEND.replace("Resend", "Revoke").replace("resendInvitation", "revokeInvitation")
ACCEPT = """
mutation Accept($input: AcceptInvitationInput!) {
  acceptInvitation(input: $input) {
    token
    user { id status email }
    expiresAt
    errors { code message field }
  }
}
"""
LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) {
    token
    user { id email }
    expiresAt
    errors { code message field }
  }
}
"""
LOGOUT = "mutation { logout { errors { code message field } } }"
ASSIGN = """
mutation Assign($userId: ID!) {
  assignLicense(userId: $userId) {
    user { id status hasLicense }
    licenses { inUse available }
    errors { code message field }
  }
}
"""
UNASSIGN = ASSIGN.replace("Assign(", "Unassign(").replace("assignLicense", "unassignLicense")
UPDATE = """
mutation Update($id: ID!, $input: UpdateUserInput!) {
  updateUser(id: $id, input: $input) {
    user { id firstName lastName name role qualification }
    licenses { inUse }
    errors { code message field }
  }
}
"""
CHANGE_SEATS = """
mutation Seats($input: ChangeSeatCountInput!) {
  changeSeatCount(input: $input) {
    licenses { total inUse available scheduledTotal scheduledAt }
    charge { id kind quantity unitAmountCents amountCents currency periodStart periodEnd }
    errors { code message field }
  }
}
"""
CANCEL_SEATS = """
mutation { cancelScheduledSeatChange {
  licenses { total scheduledTotal } errors { code message field }
} }
"""
PREVIEW = """
query Preview($total: Int!) {
  account { seatChangePreview(total: $total) { kind amountDueNowCents prorationDate } }
}
"""
TRANSFER = """
mutation Transfer($userId: ID!) {
  transferOwnership(userId: $userId) {
    previousOwner { id role isOwner }
    newOwner { id role isOwner }
    errors { code message field }
  }
}
"""
CREATE_TOKEN = """
mutation Create($name: String!) {
  createApiToken(name: $name) {
    apiToken { id name prefix createdAt revokedAt createdBy { id } }
    secret
    errors { code message field }
  }
}
"""
REVOKE_TOKEN = """
mutation RevokeToken($id: ID!) {
  revokeApiToken(id: $id) {
    apiToken { id revokedAt }
    secret
    errors { code message field }
  }
}
"""


def invite_input(email: str, **extra: Any) -> dict[str, Any]:
    return {"input": {"email": email, "firstName": "Ivy", "lastName": "Invited", **extra}}


def seats_input(total: int, **extra: Any) -> dict[str, Any]:
    return {
        "input": {"total": total, "acceptAgreement": True, "agreementVersion": AGREEMENT, **extra}
    }


async def invite(http: httpx.AsyncClient, p: Principals, email: str) -> str:
    payload = payload_of(
        await gql(http, INVITE, token=p.owner_token, variables=invite_input(email)), "inviteUser"
    )
    assert payload["errors"] == [], payload
    user_id: str = payload["user"]["id"]
    return user_id


async def invitation_link_token(user_id: int | str) -> str:
    invitation = await Invitation.filter(user_id=int(user_id)).order_by("-id").first()
    assert invitation is not None
    return invitation_token(invitation.id, invitation.token_version)


async def in_use(account_id: int) -> int:
    return (await Account.get(id=account_id)).seats_in_use


# ---------------------------------------------------------------------------
# inviteUser


async def test_invite_user_succeeds_with_every_field(client, principals):
    body = await gql(
        client,
        INVITE,
        token=principals.admin_token,
        variables=invite_input("ivy@example.com", role="ADMIN", qualification="CPA"),
    )
    payload = payload_of(body, "inviteUser")

    assert_succeeded(payload, "user", "invitation", "licenses")
    assert payload["user"] == {
        "id": payload["user"]["id"],
        "email": "ivy@example.com",
        "role": "ADMIN",
        "status": "INVITED",
        "hasLicense": True,
        "qualification": "CPA",
    }
    assert payload["invitation"]["status"] == "PENDING"
    assert payload["invitation"]["expiresAt"] == "2026-03-17T12:00:00+00:00"
    assert payload["licenses"] == {"total": 5, "inUse": 4, "available": 1, "pendingInvitations": 1}


INVITE_REFUSALS = [
    ({}, "not-an-email", "INVALID_INPUT", "email"),
    ({"firstName": "   "}, "ok@example.com", "INVALID_INPUT", "firstName"),
    ({"firstName": "Tab\there"}, "ok@example.com", "INVALID_INPUT", "firstName"),
    ({"lastName": "x" * 101}, "ok@example.com", "INVALID_INPUT", "lastName"),
    ({"qualification": "q" * 201}, "ok@example.com", "INVALID_INPUT", "qualification"),
    ({"role": "OWNER"}, "ok@example.com", "OWNER_ROLE_IMMUTABLE", "role"),
    # The email exists (case-insensitively): the user is given a licence
    # with assignLicense, not invited twice.
    ({}, "MIA@Example.com", "EMAIL_TAKEN", "email"),
    # Input validation comes before the business rules.
    ({"firstName": ""}, "mia@example.com", "INVALID_INPUT", "firstName"),
]


async def test_invite_user_refusals(client, principals):
    failures = Failures()
    for extra, email, code, field in INVITE_REFUSALS:
        with failures.case(f"{email} {extra} -> {code}"):
            await refused_without_change(
                client,
                INVITE,
                "inviteUser",
                code,
                token=principals.owner_token,
                variables=invite_input(email, **extra),
                error_field=field,
            )
    failures.check()


async def test_invite_user_is_forbidden_to_a_member_before_any_validation(client, principals):
    await refused_without_change(
        client,
        INVITE,
        "inviteUser",
        "FORBIDDEN",
        token=principals.member_token,
        variables=invite_input("not-an-email", role="OWNER"),
    )


async def test_invite_user_without_a_free_licence(client, principals):
    await invite(client, principals, "four@example.com")
    await invite(client, principals, "five@example.com")

    await refused_without_change(
        client,
        INVITE,
        "inviteUser",
        "NO_AVAILABLE_LICENSES",
        token=principals.api_token,
        variables=invite_input("six@example.com"),
    )
    assert await in_use(principals.account_id) == 5


# ---------------------------------------------------------------------------
# resendInvitation / revokeInvitation


async def test_resend_invitation_rotates_the_token_and_the_expiry(client, principals, clock):
    user_id = await invite(client, principals, "ivy@example.com")
    old_token = await invitation_link_token(user_id)
    clock.advance(timedelta(days=2))

    payload = payload_of(
        await gql(client, RESEND, token=principals.owner_token, variables={"userId": user_id}),
        "resendInvitation",
    )

    assert_succeeded(payload, "user", "invitation", "licenses")
    assert payload["invitation"]["status"] == "PENDING"
    assert payload["invitation"]["expiresAt"] == "2026-03-19T12:00:00+00:00"
    assert payload["user"]["status"] == "INVITED"
    assert await invitation_link_token(user_id) != old_token


async def test_resend_of_an_expired_invitation_takes_a_licence_again(client, principals, clock):
    user_id = await invite(client, principals, "ivy@example.com")
    clock.advance(timedelta(days=8))

    payload = payload_of(
        await gql(client, RESEND, token=principals.api_token, variables={"userId": user_id}),
        "resendInvitation",
    )

    assert_succeeded(payload, "user", "invitation", "licenses")
    assert payload["user"]["status"] == "INVITED"
    assert payload["licenses"]["inUse"] == 4


async def test_resend_of_an_expired_invitation_without_a_free_licence(client, principals, clock):
    expired = await invite(client, principals, "late@example.com")
    clock.advance(timedelta(days=8))
    # These two expire the overdue invitation first, then take the last licences.
    await invite(client, principals, "four@example.com")
    await invite(client, principals, "five@example.com")

    await refused_without_change(
        client,
        RESEND,
        "resendInvitation",
        "NO_AVAILABLE_LICENSES",
        token=principals.owner_token,
        variables={"userId": expired},
    )
    assert (await User.get(id=int(expired))).status == UserStatus.DISABLED


async def test_resend_and_revoke_refusals(client, principals):
    failures = Failures()
    for mutation, field in ((RESEND, "resendInvitation"), (REVOKE, "revokeInvitation")):
        # A user not in the account: unknown, malformed, or another account's.
        for user_id in ("999999", "not-an-id", str(principals.other_admin_id)):
            with failures.case(f"{field}({user_id})"):
                await refused_without_change(
                    client,
                    mutation,
                    field,
                    "NOT_FOUND",
                    token=principals.owner_token,
                    variables={"userId": user_id},
                )
        # An accepted invitation.
        with failures.case(f"{field}(member)"):
            await refused_without_change(
                client,
                mutation,
                field,
                "INVITATION_INVALID",
                token=principals.admin_token,
                variables={"userId": str(principals.member_id)},
            )
    failures.check()


async def test_revoke_of_the_owners_password_set_link(client, principals):
    await refused_without_change(
        client,
        REVOKE,
        "revokeInvitation",
        "OWNER_LICENSE_REQUIRED",
        token=principals.admin_token,
        variables={"userId": str(principals.owner_id)},
    )


async def test_revoke_invitation_releases_the_licence(client, principals):
    user_id = await invite(client, principals, "ivy@example.com")

    payload = payload_of(
        await gql(client, REVOKE, token=principals.admin_token, variables={"userId": user_id}),
        "revokeInvitation",
    )

    assert_succeeded(payload, "user", "invitation", "licenses")
    assert payload["invitation"]["status"] == "REVOKED"
    assert payload["user"]["status"] == "DISABLED"
    assert payload["licenses"] == {"inUse": 3, "available": 2, "pendingInvitations": 0}
    # Revoked twice: no longer pending.
    await refused_without_change(
        client,
        REVOKE,
        "revokeInvitation",
        "INVITATION_INVALID",
        token=principals.admin_token,
        variables={"userId": user_id},
    )


# ---------------------------------------------------------------------------
# acceptInvitation (public)


async def test_accept_invitation_starts_a_session(client, principals):
    user_id = await invite(client, principals, "ivy@example.com")
    token = await invitation_link_token(user_id)

    payload = payload_of(
        await gql(client, ACCEPT, variables={"input": {"token": token, "password": PASSWORD}}),
        "acceptInvitation",
    )

    assert_succeeded(payload, "token", "user", "expiresAt")
    assert payload["user"] == {"id": user_id, "status": "ENABLED", "email": "ivy@example.com"}
    assert payload["expiresAt"] == "2026-03-24T12:00:00+00:00"
    viewer = await gql(client, VIEWER, token=payload["token"])
    assert viewer["data"]["viewer"] == {"id": user_id, "role": "MEMBER"}


async def test_accept_invitation_refusals(client, principals, clock):
    user_id = await invite(client, principals, "ivy@example.com")
    first_token = await invitation_link_token(user_id)
    await gql(client, RESEND, token=principals.owner_token, variables={"userId": user_id})
    current = await invitation_link_token(user_id)

    async def refused(token: str, password: str, code: str, field: str | None = None) -> None:
        await refused_without_change(
            client,
            ACCEPT,
            "acceptInvitation",
            code,
            token=None,
            variables={"input": {"token": token, "password": password}},
            error_field=field,
        )

    await refused("no-such-token", PASSWORD, "INVITATION_INVALID")
    await refused(first_token, PASSWORD, "INVITATION_INVALID")  # superseded by the resend
    await refused(current, "too short", "WEAK_PASSWORD", "password")
    await refused(current, "p" * 257, "WEAK_PASSWORD", "password")
    # The password is input validation: it is checked before the token.
    await refused("no-such-token", "short", "WEAK_PASSWORD", "password")
    clock.advance(timedelta(days=7))
    await refused(current, PASSWORD, "INVITATION_EXPIRED")


async def test_accept_invitation_twice(client, principals):
    user_id = await invite(client, principals, "ivy@example.com")
    token = await invitation_link_token(user_id)
    variables = {"input": {"token": token, "password": PASSWORD}}
    first = payload_of(await gql(client, ACCEPT, variables=variables), "acceptInvitation")
    assert_succeeded(first, "token", "user", "expiresAt")

    await refused_without_change(
        client, ACCEPT, "acceptInvitation", "INVITATION_INVALID", token=None, variables=variables
    )


async def test_accept_invitation_of_a_revoked_invitation(client, principals):
    user_id = await invite(client, principals, "ivy@example.com")
    token = await invitation_link_token(user_id)
    await gql(client, REVOKE, token=principals.owner_token, variables={"userId": user_id})

    await refused_without_change(
        client,
        ACCEPT,
        "acceptInvitation",
        "INVITATION_INVALID",
        token=None,
        variables={"input": {"token": token, "password": PASSWORD}},
    )


# ---------------------------------------------------------------------------
# login / logout


def login_input(email: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    return {"input": {"email": email, "password": password, **extra}}


async def test_login_and_logout(client, principals):
    payload = payload_of(
        await gql(client, LOGIN, variables=login_input("ADAM@example.com")), "login"
    )

    assert_succeeded(payload, "token", "user", "expiresAt")
    assert payload["user"] == {"id": str(principals.admin_id), "email": "adam@example.com"}
    token = payload["token"]
    assert (await gql(client, VIEWER, token=token))["data"]["viewer"]["role"] == "ADMIN"

    logout = payload_of(await gql(client, LOGOUT, token=token), "logout")
    assert logout == {"errors": []}
    assert top_codes(await gql(client, VIEWER, token=token)) == ["UNAUTHENTICATED"]
    # Only that session ended.
    assert (await gql(client, VIEWER, token=principals.admin_token))["data"]["viewer"]


async def test_login_invalid_credentials_whatever_the_reason(client, principals):
    member = {"userId": str(principals.member_id)}
    await gql(client, UNASSIGN, token=principals.owner_token, variables=member)
    await invite(client, principals, "ivy@example.com")
    cases = [
        login_input("adam@example.com", "wrong password!"),
        login_input("nobody@example.com"),
        login_input("not an email"),
        login_input("mia@example.com"),  # DISABLED
        login_input("ivy@example.com"),  # no password yet
        login_input("adam@example.com", accountId=str(principals.other_account_id)),
        login_input("adam@example.com", "p" * 300),
    ]
    for variables in cases:
        payload = payload_of(await gql(client, LOGIN, variables=variables), "login")
        error = assert_refused(payload, "INVALID_CREDENTIALS")
        assert error["message"] == "The email or password is incorrect."


async def test_login_with_the_same_email_in_two_accounts(client, principals, clock):
    globex_owner = owner_principal(principals.other_account_id, principals.other_owner_id)
    outcome = await invitations.invite_user(
        actor=globex_owner,
        email="adam@example.com",
        first_name="Adam",
        last_name="Again",
        role=Role.MEMBER,
        clock=clock,
    )
    await accept_pending_invitation(outcome.user.id, clock)

    payload = payload_of(
        await gql(client, LOGIN, variables=login_input("adam@example.com")), "login"
    )
    assert_refused(payload, "ACCOUNT_REQUIRED", field="accountId")

    chosen = payload_of(
        await gql(
            client,
            LOGIN,
            variables=login_input("adam@example.com", accountId=str(principals.other_account_id)),
        ),
        "login",
    )
    assert_succeeded(chosen, "token", "user", "expiresAt")
    assert chosen["user"]["id"] == str(outcome.user.id)


async def test_login_is_rate_limited_after_repeated_failures(client, principals):
    config.configure_with(failed_logins_allowed=3)
    for _ in range(3):
        payload = payload_of(
            await gql(client, LOGIN, variables=login_input("adam@example.com", "wrong password!")),
            "login",
        )
        assert_refused(payload, "INVALID_CREDENTIALS")

    # Even the right password is refused now, before any password check.
    payload = payload_of(
        await gql(client, LOGIN, variables=login_input("adam@example.com")), "login"
    )
    assert_refused(payload, "RATE_LIMITED")
    # The client address is limited too, whatever the email.
    other = payload_of(await gql(client, LOGIN, variables=login_input("mia@example.com")), "login")
    assert_refused(other, "RATE_LIMITED")


# ---------------------------------------------------------------------------
# assignLicense / unassignLicense


async def test_unassign_then_assign_a_licence(client, principals):
    member = {"userId": str(principals.member_id)}
    payload = payload_of(
        await gql(client, UNASSIGN, token=principals.admin_token, variables=member),
        "unassignLicense",
    )
    assert_succeeded(payload, "user", "licenses")
    assert payload["user"] == {"id": member["userId"], "status": "DISABLED", "hasLicense": False}
    assert payload["licenses"] == {"inUse": 2, "available": 3}
    # Signed out at once.
    assert top_codes(await gql(client, VIEWER, token=principals.member_token)) == [
        "UNAUTHENTICATED"
    ]

    payload = payload_of(
        await gql(client, ASSIGN, token=principals.api_token, variables=member), "assignLicense"
    )
    assert_succeeded(payload, "user", "licenses")
    # The member has a password: ENABLED at once.
    assert payload["user"] == {"id": member["userId"], "status": "ENABLED", "hasLicense": True}
    assert payload["licenses"] == {"inUse": 3, "available": 2}


async def test_assign_and_unassign_refusals(client, principals):
    p = principals
    owner = p.owner_token
    await refused_without_change(
        client,
        ASSIGN,
        "assignLicense",
        "ALREADY_LICENSED",
        token=owner,
        variables={"userId": str(p.member_id)},
    )
    await refused_without_change(
        client,
        UNASSIGN,
        "unassignLicense",
        "OWNER_LICENSE_REQUIRED",
        token=p.admin_token,
        variables={"userId": str(p.owner_id)},
    )
    for mutation, field in ((ASSIGN, "assignLicense"), (UNASSIGN, "unassignLicense")):
        for user_id in ("424242", "-1", str(p.other_admin_id)):
            await refused_without_change(
                client, mutation, field, "NOT_FOUND", token=owner, variables={"userId": user_id}
            )
        await refused_without_change(
            client,
            mutation,
            field,
            "FORBIDDEN",
            token=p.member_token,
            variables={"userId": str(p.member_id)},
        )

    await gql(client, UNASSIGN, token=owner, variables={"userId": str(p.member_id)})
    await refused_without_change(
        client,
        UNASSIGN,
        "unassignLicense",
        "NOT_LICENSED",
        token=owner,
        variables={"userId": str(p.member_id)},
    )
    await invite(client, p, "three@example.com")
    await invite(client, p, "four@example.com")
    await invite(client, p, "five@example.com")
    await refused_without_change(
        client,
        ASSIGN,
        "assignLicense",
        "NO_AVAILABLE_LICENSES",
        token=owner,
        variables={"userId": str(p.member_id)},
    )


# ---------------------------------------------------------------------------
# updateUser


async def test_update_user_by_an_admin(client, principals):
    payload = payload_of(
        await gql(
            client,
            UPDATE,
            token=principals.admin_token,
            variables={
                "id": str(principals.member_id),
                "input": {
                    "firstName": " Mila ",
                    "lastName": "Stone",
                    "role": "ADMIN",
                    "qualification": "CPA",
                },
            },
        ),
        "updateUser",
    )

    assert_succeeded(payload, "user", "licenses")
    assert payload["user"] == {
        "id": str(principals.member_id),
        "firstName": "Mila",
        "lastName": "Stone",
        "name": "Mila Stone",
        "role": "ADMIN",
        "qualification": "CPA",
    }


async def test_a_member_updates_its_own_names(client, principals):
    payload = payload_of(
        await gql(
            client,
            UPDATE,
            token=principals.member_token,
            variables={"id": str(principals.member_id), "input": {"firstName": "Mimi"}},
        ),
        "updateUser",
    )

    assert payload["errors"] == []
    assert payload["user"]["name"] == "Mimi Tester"
    # The licence summary is not the member's to read.
    assert payload["licenses"] is None


UPDATE_REFUSALS = [
    ("member", "admin", {"firstName": "X"}, "FORBIDDEN", None),
    ("member", "member", {"role": "ADMIN"}, "FORBIDDEN", None),
    ("member", "member", {"qualification": "CPA"}, "FORBIDDEN", None),
    ("admin", "member", {"role": "OWNER"}, "OWNER_ROLE_IMMUTABLE", "role"),
    ("owner", "owner", {"role": "ADMIN"}, "OWNER_ROLE_IMMUTABLE", "role"),
    ("admin", "member", {"firstName": ""}, "INVALID_INPUT", "firstName"),
    ("admin", "member", {"lastName": "y" * 101}, "INVALID_INPUT", "lastName"),
    ("admin", "member", {"firstName": "new\nline"}, "INVALID_INPUT", "firstName"),
    ("admin", "member", {"qualification": "q" * 201}, "INVALID_INPUT", "qualification"),
    ("admin", "unknown", {"firstName": "X"}, "NOT_FOUND", None),
    ("admin", "other_account", {"firstName": "X"}, "NOT_FOUND", None),
    ("member", "member", {"firstName": ""}, "INVALID_INPUT", "firstName"),
]


async def test_update_user_refusals(client, principals):
    ids = {
        "owner": principals.owner_id,
        "admin": principals.admin_id,
        "member": principals.member_id,
        "unknown": 777777,
        "other_account": principals.other_admin_id,
    }
    failures = Failures()
    for token, target, change, code, field in UPDATE_REFUSALS:
        with failures.case(f"{token} changes {target} {change} -> {code}"):
            await refused_without_change(
                client,
                UPDATE,
                "updateUser",
                code,
                token=principals.token(token),
                variables={"id": str(ids[target]), "input": change},
                error_field=field,
            )
    failures.check()


# ---------------------------------------------------------------------------
# changeSeatCount / cancelScheduledSeatChange


async def test_increase_seats_at_the_previewed_amount(client, principals):
    preview = await gql(client, PREVIEW, token=principals.owner_token, variables={"total": 7})
    previewed = preview["data"]["account"]["seatChangePreview"]
    assert previewed["kind"] == "INCREASE"

    payload = payload_of(
        await gql(
            client,
            CHANGE_SEATS,
            token=principals.admin_token,
            variables=seats_input(
                7,
                expectedAmountDueCents=previewed["amountDueNowCents"],
                prorationDate=previewed["prorationDate"],
            ),
        ),
        "changeSeatCount",
    )

    assert_succeeded(payload, "licenses", "charge")
    assert payload["charge"]["kind"] == "SEAT_INCREASE"
    assert payload["charge"]["quantity"] == 2
    assert payload["charge"]["amountCents"] == previewed["amountDueNowCents"] == 2000
    assert payload["licenses"]["total"] == 7
    assert await Charge.filter(account_id=principals.account_id).count() == 1


async def test_reduce_then_cancel_the_scheduled_reduction(client, principals):
    payload = payload_of(
        await gql(client, CHANGE_SEATS, token=principals.api_token, variables=seats_input(3)),
        "changeSeatCount",
    )
    assert_succeeded(payload, "licenses")
    assert payload["charge"] is None  # documented: null for a reduction
    assert payload["licenses"]["scheduledTotal"] == 3
    assert payload["licenses"]["scheduledAt"] == "2026-04-10T12:00:00+00:00"

    cancelled = payload_of(
        await gql(client, CANCEL_SEATS, token=principals.admin_token), "cancelScheduledSeatChange"
    )
    assert_succeeded(cancelled, "licenses")
    assert cancelled["licenses"] == {"total": 5, "scheduledTotal": None}
    # Nothing scheduled: succeeds without effect.
    again = payload_of(
        await gql(client, CANCEL_SEATS, token=principals.owner_token), "cancelScheduledSeatChange"
    )
    assert again == cancelled


SEAT_REFUSALS = [
    (0, {}, "SEAT_LIMIT", "total"),
    (100001, {}, "SEAT_LIMIT", "total"),
    (6, {"acceptAgreement": False}, "AGREEMENT_NOT_ACCEPTED", "acceptAgreement"),
    (6, {"agreementVersion": "1999-01-01"}, "AGREEMENT_OUTDATED", "agreementVersion"),
    (6, {"expectedAmountDueCents": 1}, "AMOUNT_MISMATCH", "expectedAmountDueCents"),
    (3, {"expectedAmountDueCents": 1}, "AMOUNT_MISMATCH", "expectedAmountDueCents"),
    (2, {}, "SEATS_BELOW_USAGE", "total"),
    (6, {"prorationDate": "2026-03-10T11:49:59+00:00"}, "INVALID_INPUT", "prorationDate"),
    (6, {"prorationDate": "2026-03-10T12:00:01Z"}, "INVALID_INPUT", "prorationDate"),
    # Input validation before the agreement.
    (0, {"acceptAgreement": False}, "SEAT_LIMIT", "total"),
]


async def test_change_seat_count_refusals(client, principals):
    failures = Failures()
    for total, extra, code, field in SEAT_REFUSALS:
        with failures.case(f"{total} {extra} -> {code}"):
            await refused_without_change(
                client,
                CHANGE_SEATS,
                "changeSeatCount",
                code,
                token=principals.owner_token,
                variables=seats_input(total, **extra),
                error_field=field,
            )
    failures.check()


async def test_seat_changes_are_forbidden_to_a_member(client, principals):
    await refused_without_change(
        client,
        CHANGE_SEATS,
        "changeSeatCount",
        "FORBIDDEN",
        token=principals.member_token,
        variables=seats_input(0, acceptAgreement=False),
    )
    await refused_without_change(
        client,
        CANCEL_SEATS,
        "cancelScheduledSeatChange",
        "FORBIDDEN",
        token=principals.member_token,
    )


async def test_proration_date_within_the_last_ten_minutes_is_accepted(client, principals, clock):
    clock.advance(timedelta(hours=1))
    payload = payload_of(
        await gql(
            client,
            CHANGE_SEATS,
            token=principals.owner_token,
            variables=seats_input(6, prorationDate="2026-03-10T12:50:00+00:00"),
        ),
        "changeSeatCount",
    )
    assert_succeeded(payload, "licenses", "charge")
    assert payload["charge"]["periodStart"] == "2026-03-10T12:50:00+00:00"


# ---------------------------------------------------------------------------
# transferOwnership


async def test_transfer_ownership(client, principals):
    payload = payload_of(
        await gql(
            client,
            TRANSFER,
            token=principals.owner_token,
            variables={"userId": str(principals.admin_id)},
        ),
        "transferOwnership",
    )

    assert_succeeded(payload, "previousOwner", "newOwner")
    assert payload["previousOwner"] == {
        "id": str(principals.owner_id),
        "role": "ADMIN",
        "isOwner": False,
    }
    assert payload["newOwner"] == {"id": str(principals.admin_id), "role": "OWNER", "isOwner": True}
    # The previous owner is signed out; the new owner's session now acts as OWNER.
    assert top_codes(await gql(client, VIEWER, token=principals.owner_token)) == ["UNAUTHENTICATED"]
    viewer = await gql(client, VIEWER, token=principals.admin_token)
    assert viewer["data"]["viewer"]["role"] == "OWNER"


async def test_transfer_ownership_refusals(client, principals, clock):
    p = principals
    invited = await invite(client, p, "ivy@example.com")
    disabled = await invite(client, p, "dan@example.com")
    await gql(client, REVOKE, token=p.owner_token, variables={"userId": disabled})
    cases = [
        ("admin", p.member_id, "FORBIDDEN"),
        ("api", p.member_id, "FORBIDDEN"),
        ("member", p.member_id, "FORBIDDEN"),
        ("owner", 999999, "NOT_FOUND"),
        ("owner", p.other_admin_id, "NOT_FOUND"),
        ("owner", invited, "TARGET_NOT_ELIGIBLE"),
        ("owner", disabled, "TARGET_NOT_ELIGIBLE"),
        ("owner", p.owner_id, "ALREADY_OWNER"),
        # FORBIDDEN comes first: a non-owner learns nothing about the id.
        ("admin", 999999, "FORBIDDEN"),
    ]
    for who, user_id, code in cases:
        await refused_without_change(
            client,
            TRANSFER,
            "transferOwnership",
            code,
            token=p.token(who),
            variables={"userId": str(user_id)},
        )


# ---------------------------------------------------------------------------
# createApiToken / revokeApiToken


async def test_create_use_and_revoke_an_api_token(client, principals):
    payload = payload_of(
        await gql(client, CREATE_TOKEN, token=principals.admin_token, variables={"name": " CI "}),
        "createApiToken",
    )

    assert_succeeded(payload, "apiToken", "secret")
    secret = payload["secret"]
    token = payload["apiToken"]
    assert secret.startswith("lic_")
    assert token["prefix"] == secret[:12]
    assert token["name"] == "CI"
    assert token["revokedAt"] is None
    assert token["createdBy"] == {"id": str(principals.admin_id)}
    # The secret works, and acts with ADMIN rights (no viewer).
    assert (await gql(client, VIEWER, token=secret))["data"] == {"viewer": None}

    revoked = payload_of(
        await gql(
            client, REVOKE_TOKEN, token=principals.owner_token, variables={"id": token["id"]}
        ),
        "revokeApiToken",
    )
    assert_succeeded(revoked, "apiToken")
    assert revoked["secret"] is None  # the secret is shown only by createApiToken
    assert revoked["apiToken"]["revokedAt"] == "2026-03-10T12:00:00+00:00"
    assert top_codes(await gql(client, VIEWER, token=secret)) == ["UNAUTHENTICATED"]


async def test_api_token_refusals(client, principals):
    p = principals
    other_token = await ApiToken.get(account_id=p.other_account_id)
    for name, field in (("", "name"), ("x" * 101, "name"), ("bad\x00name", "name")):
        await refused_without_change(
            client,
            CREATE_TOKEN,
            "createApiToken",
            "INVALID_INPUT",
            token=p.owner_token,
            variables={"name": name},
            error_field=field,
        )
    await refused_without_change(
        client,
        CREATE_TOKEN,
        "createApiToken",
        "FORBIDDEN",
        token=p.member_token,
        variables={"name": ""},
    )
    own_token = await ApiToken.get(account_id=p.account_id)
    await refused_without_change(
        client,
        REVOKE_TOKEN,
        "revokeApiToken",
        "FORBIDDEN",
        token=p.member_token,
        variables={"id": str(own_token.id)},
    )
    for token_id in ("123456", "abc", str(other_token.id)):
        await refused_without_change(
            client,
            REVOKE_TOKEN,
            "revokeApiToken",
            "NOT_FOUND",
            token=p.owner_token,
            variables={"id": token_id},
        )
    # Another account's token is untouched.
    assert (await ApiToken.get(id=other_token.id)).revoked_at is None


async def test_sessions_are_stored_hashed(principals):
    # The bearer tokens the fixtures hold are not in the database as such.
    stored = await Session.all().values_list("token_hash", flat=True)
    assert principals.owner_token not in stored
    assert len(stored) == 4
