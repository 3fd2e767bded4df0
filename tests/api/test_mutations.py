"""Mutations through the schema: one success and one refusal each, payload shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain import config
from domain.enums import InvitationStatus, Role, UserStatus
from domain.errors import DomainError, ErrorCode
from domain.models import ApiToken, Invitation, User
from domain.principal import Principal
from domain.security import invitation_token
from domain.services import auth
from domain.services.accounts import CreatedAccount
from tests.support.factories import add_user, make_account
from tests.support.principals import as_user
from tests.support.schema_calls import codes, execute

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


INVITE = """
mutation($input: InviteUserInput!) {
  inviteUser(input: $input) {
    user { id email name role status hasLicense qualification }
    invitation { id status email expiresAt deliveryAttempts sentAt lastDeliveryError }
    licenses { total inUse available pendingInvitations }
    errors { code message field }
  }
}
"""


async def invite(owner: Principal, clock, email: str = "ivy@example.com", **extra) -> dict:
    result = await execute(
        INVITE,
        owner,
        clock,
        input={"email": email, "firstName": "Ivy", "lastName": "Invited", **extra},
    )
    assert result.errors is None, result.errors
    return result.data["inviteUser"]


async def test_given_an_owner_when_inviting_then_user_invitation_and_fresh_licenses(
    account, owner, clock
):
    payload = await invite(owner, clock, role="ADMIN", qualification="CPA")

    assert payload["errors"] == []
    assert payload["user"]["email"] == "ivy@example.com"
    assert payload["user"]["role"] == "ADMIN"
    assert payload["user"]["status"] == "INVITED"
    assert payload["user"]["hasLicense"] is True
    assert payload["user"]["qualification"] == "CPA"
    assert payload["invitation"]["status"] == "PENDING"
    assert payload["invitation"]["deliveryAttempts"] == 0
    assert payload["invitation"]["expiresAt"] == "2026-03-17T12:00:00+00:00"
    assert payload["licenses"] == {"total": 5, "inUse": 2, "available": 3, "pendingInvitations": 1}


async def test_given_a_taken_email_when_inviting_then_one_error_and_other_fields_null(
    account, owner, clock
):
    payload = await invite(owner, clock, email="OWNER@example.com")

    assert payload == {
        "user": None,
        "invitation": None,
        "licenses": None,
        "errors": [
            {"code": "EMAIL_TAKEN", "message": payload["errors"][0]["message"], "field": "email"}
        ],
    }


async def test_given_a_member_when_inviting_then_forbidden_in_the_payload(account, clock):
    member = await add_user(account.account_id, first_name="Mia", created_at=T0)

    payload = await invite(as_user(member), clock)

    assert [e["code"] for e in payload["errors"]] == ["FORBIDDEN"]


async def test_given_two_invitations_in_one_request_when_run_then_each_payload_is_fresh(
    account, owner, clock
):
    result = await execute(
        """mutation {
          a: inviteUser(input: {email: "a@example.com", firstName: "A", lastName: "A"}) {
            licenses { inUse } }
          b: inviteUser(input: {email: "b@example.com", firstName: "B", lastName: "B"}) {
            licenses { inUse } }
        }""",
        owner,
        clock,
    )

    assert result.errors is None, result.errors
    assert result.data == {"a": {"licenses": {"inUse": 2}}, "b": {"licenses": {"inUse": 3}}}


async def test_given_loaded_relations_when_a_later_mutation_changes_them_then_it_shows_the_change(
    account, owner, clock
):
    invited = await invite(owner, clock)
    user_id = invited["user"]["id"]

    result = await execute(
        """mutation($id: ID!) {
          a: updateUser(id: $id, input: {firstName: "Ivo"}) { user { invitation { status } } }
          b: revokeInvitation(userId: $id) { user { status invitation { status } } }
        }""",
        owner,
        clock,
        id=user_id,
    )

    assert result.errors is None, result.errors
    assert result.data["a"]["user"]["invitation"]["status"] == "PENDING"
    assert result.data["b"]["user"] == {"status": "DISABLED", "invitation": {"status": "REVOKED"}}


RESEND = """mutation($id: ID!) { resendInvitation(userId: $id) {
  user { id status } invitation { id status } licenses { inUse } errors { code field } } }"""


async def test_given_a_pending_invitation_when_resending_then_same_invitation_is_returned(
    account, owner, clock
):
    invited = await invite(owner, clock)

    result = await execute(RESEND, owner, clock, id=invited["user"]["id"])

    payload = result.data["resendInvitation"]
    assert payload["errors"] == []
    assert payload["invitation"] == {"id": invited["invitation"]["id"], "status": "PENDING"}
    assert payload["licenses"] == {"inUse": 2}


async def test_given_an_unknown_user_when_resending_then_not_found(account, owner, clock):
    result = await execute(RESEND, owner, clock, id="424242")

    payload = result.data["resendInvitation"]
    assert [e["code"] for e in payload["errors"]] == ["NOT_FOUND"]
    assert payload["user"] is None and payload["invitation"] is None


REVOKE = """mutation($id: ID!) { revokeInvitation(userId: $id) {
  user { status } invitation { status revokedAt } licenses { inUse } errors { code } } }"""


async def test_given_a_pending_invitation_when_revoking_then_licence_is_released(
    account, owner, clock
):
    invited = await invite(owner, clock)

    result = await execute(REVOKE, owner, clock, id=invited["user"]["id"])

    payload = result.data["revokeInvitation"]
    assert payload["errors"] == []
    assert payload["user"] == {"status": "DISABLED"}
    assert payload["invitation"] == {"status": "REVOKED", "revokedAt": "2026-03-10T12:00:00+00:00"}
    assert payload["licenses"] == {"inUse": 1}


async def test_given_the_owner_when_revoking_its_link_then_owner_license_required(
    account, owner, clock
):
    result = await execute(REVOKE, owner, clock, id=str(account.owner_user_id))

    assert [e["code"] for e in result.data["revokeInvitation"]["errors"]] == [
        "OWNER_LICENSE_REQUIRED"
    ]


ACCEPT = """mutation($token: String!, $password: String!) {
  acceptInvitation(input: {token: $token, password: $password}) {
    token expiresAt user { id status invitation { status } licenseHistory { assignedBy { id } } }
    errors { code field } } }"""


async def accept(account: CreatedAccount, owner: Principal, clock) -> tuple[str, dict]:
    invited = await invite(owner, clock)
    invitation = await Invitation.get(id=int(invited["invitation"]["id"]))
    token = invitation_token(invitation.id, invitation.token_version)
    result = await execute(ACCEPT, None, clock, token=token, password=PASSWORD)
    assert result.errors is None, result.errors
    return invited["user"]["id"], result.data["acceptInvitation"]


async def test_given_a_valid_token_without_principal_when_accepting_then_a_session_starts(
    account, owner, clock
):
    user_id, payload = await accept(account, owner, clock)

    assert payload["errors"] == []
    assert payload["token"]
    assert payload["expiresAt"] == "2026-03-24T12:00:00+00:00"
    assert payload["user"] == {
        "id": user_id,
        "status": "ENABLED",
        "invitation": {"status": "ACCEPTED"},
        "licenseHistory": [{"assignedBy": {"id": str(account.owner_user_id)}}],
    }
    principal = await auth.authenticate(bearer=payload["token"], clock=clock)
    assert principal.user_id == int(user_id)


async def test_given_a_bad_token_when_accepting_then_invitation_invalid(account, clock):
    result = await execute(ACCEPT, None, clock, token="nope", password=PASSWORD)

    assert result.data["acceptInvitation"] == {
        "token": None,
        "expiresAt": None,
        "user": None,
        "errors": [{"code": "INVITATION_INVALID", "field": None}],
    }


LOGIN = """mutation($email: String!, $password: String!, $accountId: ID) {
  login(input: {email: $email, password: $password, accountId: $accountId}) {
    token user { email status } errors { code } } }"""


async def test_given_an_activated_user_when_logging_in_then_a_token_is_returned(
    account, owner, clock
):
    await accept(account, owner, clock)

    result = await execute(
        LOGIN, None, clock, email="ivy@example.com", password=PASSWORD, accountId=None
    )

    payload = result.data["login"]
    assert payload["errors"] == []
    assert payload["user"] == {"email": "ivy@example.com", "status": "ENABLED"}
    assert (await auth.authenticate(bearer=payload["token"], clock=clock)).account_id == (
        account.account_id
    )


async def test_given_a_wrong_password_when_logging_in_then_invalid_credentials(
    account, owner, clock
):
    await accept(account, owner, clock)

    result = await execute(LOGIN, None, clock, email="ivy@example.com", password="wrong" * 3)

    assert result.data["login"] == {
        "token": None,
        "user": None,
        "errors": [{"code": "INVALID_CREDENTIALS"}],
    }


async def test_given_a_session_when_logging_out_then_the_token_stops_working(account, owner, clock):
    _, accepted = await accept(account, owner, clock)
    session = await auth.authenticate(bearer=accepted["token"], clock=clock)

    result = await execute("mutation { logout { errors { code } } }", session, clock)

    assert result.data == {"logout": {"errors": []}}
    with pytest.raises(DomainError) as refused:
        await auth.authenticate(bearer=accepted["token"], clock=clock)
    assert refused.value.code == ErrorCode.UNAUTHENTICATED


async def test_given_no_principal_when_logging_out_then_unauthenticated(account, clock):
    result = await execute("mutation { logout { errors { code } } }", None, clock)

    assert codes(result) == ["UNAUTHENTICATED"]
    assert result.data is None


ASSIGN = """mutation($id: ID!) { assignLicense(userId: $id) {
  user { status hasLicense } licenses { inUse } errors { code } } }"""
UNASSIGN = """mutation($id: ID!) { unassignLicense(userId: $id) {
  user { status hasLicense } licenses { inUse } errors { code } } }"""


async def test_given_a_disabled_user_with_password_when_assigning_then_enabled(
    account, owner, clock
):
    user = await add_user(
        account.account_id, first_name="Dan", status=UserStatus.DISABLED, created_at=T0
    )
    await User.filter(id=user.id).update(password_hash="x")

    result = await execute(ASSIGN, owner, clock, id=str(user.id))

    assert result.data["assignLicense"] == {
        "user": {"status": "ENABLED", "hasLicense": True},
        "licenses": {"inUse": 2},
        "errors": [],
    }


async def test_given_a_licensed_user_when_assigning_then_already_licensed(account, owner, clock):
    result = await execute(ASSIGN, owner, clock, id=str(account.owner_user_id))

    assert result.data["assignLicense"] == {
        "user": None,
        "licenses": None,
        "errors": [{"code": "ALREADY_LICENSED"}],
    }


async def test_given_an_invited_user_when_unassigning_then_disabled_and_licence_free(
    account, owner, clock
):
    invited = await invite(owner, clock)

    result = await execute(UNASSIGN, owner, clock, id=invited["user"]["id"])

    assert result.data["unassignLicense"] == {
        "user": {"status": "DISABLED", "hasLicense": False},
        "licenses": {"inUse": 1},
        "errors": [],
    }


async def test_given_the_owner_when_unassigning_then_owner_license_required(account, owner, clock):
    result = await execute(UNASSIGN, owner, clock, id=str(account.owner_user_id))

    assert [e["code"] for e in result.data["unassignLicense"]["errors"]] == [
        "OWNER_LICENSE_REQUIRED"
    ]


UPDATE = """mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) {
  user { firstName lastName name role qualification } licenses { total }
  errors { code field } } }"""


async def test_given_an_admin_when_updating_a_user_then_changes_and_omitted_fields_stay(
    account, owner, clock
):
    user = await add_user(account.account_id, first_name="Ann", qualification="CPA", created_at=T0)

    renamed = await execute(
        UPDATE, owner, clock, id=str(user.id), input={"lastName": "Other", "role": "ADMIN"}
    )
    cleared = await execute(UPDATE, owner, clock, id=str(user.id), input={"qualification": None})

    assert renamed.data["updateUser"] == {
        "user": {
            "firstName": "Ann",
            "lastName": "Other",
            "name": "Ann Other",
            "role": "ADMIN",
            "qualification": "CPA",
        },
        "licenses": {"total": 5},
        "errors": [],
    }
    assert cleared.data["updateUser"]["user"]["qualification"] is None


async def test_given_a_member_when_renaming_itself_then_ok_and_licenses_null(account, clock):
    member = await add_user(account.account_id, first_name="Mia", created_at=T0)

    result = await execute(
        UPDATE, as_user(member), clock, id=str(member.id), input={"firstName": "Maya"}
    )

    payload = result.data["updateUser"]
    assert payload["errors"] == []
    assert payload["user"]["name"] == "Maya Tester"
    assert payload["licenses"] is None


async def test_given_a_member_when_changing_its_role_then_forbidden(account, clock):
    member = await add_user(account.account_id, first_name="Mia", created_at=T0)

    result = await execute(
        UPDATE, as_user(member), clock, id=str(member.id), input={"role": "ADMIN"}
    )

    assert result.data["updateUser"]["errors"] == [{"code": "FORBIDDEN", "field": None}]
    assert result.data["updateUser"]["user"] is None


CHANGE = """mutation($input: ChangeSeatCountInput!) { changeSeatCount(input: $input) {
  licenses { total scheduledTotal scheduledAt } charge { kind quantity amountCents currency }
  errors { code field } } }"""


async def test_given_an_increase_when_changing_seats_then_charge_and_licenses(
    account, owner, clock
):
    preview = await execute(
        "{ account { seatChangePreview(total: 8) { kind amountDueNowCents prorationDate "
        "agreementVersion licensesOverNewTotal } } }",
        owner,
        clock,
    )
    planned = preview.data["account"]["seatChangePreview"]

    result = await execute(
        CHANGE,
        owner,
        clock,
        input={
            "total": 8,
            "acceptAgreement": True,
            "agreementVersion": planned["agreementVersion"],
            "expectedAmountDueCents": planned["amountDueNowCents"],
            "prorationDate": planned["prorationDate"],
        },
    )

    assert planned["kind"] == "INCREASE"
    payload = result.data["changeSeatCount"]
    assert payload["errors"] == []
    assert payload["licenses"] == {"total": 8, "scheduledTotal": None, "scheduledAt": None}
    assert payload["charge"] == {
        "kind": "SEAT_INCREASE",
        "quantity": 3,
        "amountCents": planned["amountDueNowCents"],
        "currency": "USD",
    }


async def test_given_an_old_agreement_when_changing_seats_then_agreement_outdated(
    account, owner, clock
):
    result = await execute(
        CHANGE,
        owner,
        clock,
        input={"total": 8, "acceptAgreement": True, "agreementVersion": "1999-01-01"},
    )

    assert result.data["changeSeatCount"] == {
        "licenses": None,
        "charge": None,
        "errors": [{"code": "AGREEMENT_OUTDATED", "field": "agreementVersion"}],
    }


async def test_given_a_total_out_of_range_when_previewing_then_top_level_seat_limit(
    account, owner, clock
):
    result = await execute(
        "{ account { name seatChangePreview(total: 0) { kind } } }", owner, clock
    )

    assert codes(result) == ["SEAT_LIMIT"]
    assert result.data == {"account": {"name": "Acme", "seatChangePreview": None}}


async def test_given_a_reduction_when_changing_seats_then_scheduled_without_charge(
    account, owner, clock
):
    result = await execute(
        CHANGE,
        owner,
        clock,
        input={"total": 2, "acceptAgreement": True, "agreementVersion": config.AGREEMENT_VERSION},
    )

    assert result.data["changeSeatCount"] == {
        "licenses": {"total": 5, "scheduledTotal": 2, "scheduledAt": "2026-04-10T12:00:00+00:00"},
        "charge": None,
        "errors": [],
    }


CANCEL = """mutation { cancelScheduledSeatChange {
  licenses { total scheduledTotal } errors { code } } }"""


async def test_given_a_scheduled_reduction_when_cancelling_then_nothing_is_scheduled(
    account, owner, clock
):
    await execute(
        CHANGE,
        owner,
        clock,
        input={"total": 2, "acceptAgreement": True, "agreementVersion": config.AGREEMENT_VERSION},
    )

    result = await execute(CANCEL, owner, clock)

    assert result.data["cancelScheduledSeatChange"] == {
        "licenses": {"total": 5, "scheduledTotal": None},
        "errors": [],
    }


async def test_given_a_member_when_cancelling_then_forbidden(account, clock):
    member = await add_user(account.account_id, first_name="Mia", created_at=T0)

    result = await execute(CANCEL, as_user(member), clock)

    assert result.data["cancelScheduledSeatChange"] == {
        "licenses": None,
        "errors": [{"code": "FORBIDDEN"}],
    }


TRANSFER = """mutation($id: ID!) { transferOwnership(userId: $id) {
  previousOwner { id role isOwner } newOwner { id role isOwner } errors { code } } }"""


async def test_given_an_enabled_admin_when_transferring_then_roles_swap(account, owner, clock):
    admin = await add_user(account.account_id, first_name="Ann", role=Role.ADMIN, created_at=T0)

    result = await execute(TRANSFER, owner, clock, id=str(admin.id))

    assert result.data["transferOwnership"] == {
        "previousOwner": {"id": str(account.owner_user_id), "role": "ADMIN", "isOwner": False},
        "newOwner": {"id": str(admin.id), "role": "OWNER", "isOwner": True},
        "errors": [],
    }


async def test_given_an_invited_user_when_transferring_then_target_not_eligible(
    account, owner, clock
):
    invited = await invite(owner, clock)

    result = await execute(TRANSFER, owner, clock, id=invited["user"]["id"])

    assert result.data["transferOwnership"] == {
        "previousOwner": None,
        "newOwner": None,
        "errors": [{"code": "TARGET_NOT_ELIGIBLE"}],
    }


CREATE_TOKEN = """mutation($name: String!) { createApiToken(name: $name) {
  apiToken { id name prefix createdBy { id } revokedAt } secret errors { code field } } }"""
REVOKE_TOKEN = """mutation($id: ID!) { revokeApiToken(id: $id) {
  apiToken { id revokedAt } secret errors { code } } }"""


async def test_given_an_owner_when_creating_an_api_token_then_the_secret_is_shown_once(
    account, owner, clock
):
    result = await execute(CREATE_TOKEN, owner, clock, name="CI")

    payload = result.data["createApiToken"]
    assert payload["errors"] == []
    assert payload["secret"].startswith("lic_")
    assert payload["secret"].startswith(payload["apiToken"]["prefix"])
    assert payload["apiToken"]["createdBy"] == {"id": str(account.owner_user_id)}
    assert payload["apiToken"]["revokedAt"] is None


async def test_given_a_blank_name_when_creating_an_api_token_then_invalid_input(
    account, owner, clock
):
    result = await execute(CREATE_TOKEN, owner, clock, name="  ")

    assert result.data["createApiToken"] == {
        "apiToken": None,
        "secret": None,
        "errors": [{"code": "INVALID_INPUT", "field": "name"}],
    }


async def test_given_a_token_when_revoking_it_then_revoked_without_secret(account, owner, clock):
    token = await ApiToken.get(account_id=account.account_id)

    result = await execute(REVOKE_TOKEN, owner, clock, id=str(token.id))

    assert result.data["revokeApiToken"] == {
        "apiToken": {"id": str(token.id), "revokedAt": "2026-03-10T12:00:00+00:00"},
        "secret": None,
        "errors": [],
    }


async def test_given_another_accounts_token_when_revoking_then_not_found(account, owner, clock):
    other = await make_account(clock, email="owner@other.example.com", name="Other")
    token = await ApiToken.get(account_id=other.account_id)

    result = await execute(REVOKE_TOKEN, owner, clock, id=str(token.id))

    assert result.data["revokeApiToken"]["errors"] == [{"code": "NOT_FOUND"}]
    assert (await ApiToken.get(id=token.id)).revoked_at is None


async def test_given_a_refused_mutation_when_run_then_nothing_changed(account, owner, clock):
    before = await Invitation.filter(account_id=account.account_id).count()

    await invite(owner, clock, email="not an email")

    assert await Invitation.filter(account_id=account.account_id).count() == before
    assert await Invitation.filter(status=InvitationStatus.PENDING).count() == 1
