"""The requests Microsoft Entra ID and Okta send, replayed as each documents
them, with every effect read back through GraphQL (SPEC section 9)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from domain.enums import EmailKind
from domain.models import OutboxMessage
from tests.support.http_client import auth_headers, gql
from tests.support.principals import Principals

pytestmark = pytest.mark.anyio

SCIM = "/scim/v2"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = """
query ($id: ID!) {
  account {
    user(id: $id) { status email firstName lastName qualification invitation { status email } }
    licenses { inUse }
  }
}"""


async def send(
    http: httpx.AsyncClient, method: str, path: str, token: str, body: Any = None
) -> dict[str, Any]:
    response = await http.request(
        method,
        SCIM + path,
        json=body,
        headers=auth_headers(token, {"Content-Type": "application/scim+json"}),
    )
    assert response.status_code in (200, 201), response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    answer: dict[str, Any] = response.json()
    return answer


async def seen(http: httpx.AsyncClient, principals: Principals, user_id: str) -> dict[str, Any]:
    body = await gql(http, USER, token=principals.owner_token, variables={"id": user_id})
    assert not body.get("errors"), body
    account: dict[str, Any] = body["data"]["account"]
    return account


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def invitation_emails() -> int:
    return await OutboxMessage.filter(
        kind__in=[EmailKind.INVITATION, EmailKind.INVITATION_RESENT]
    ).count()


# --- Microsoft Entra ID --------------------------------------------------------

ENTRA_CREATE = {
    "schemas": [CORE, ENTERPRISE],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_ab6490ee@contoso.com",
    "active": True,
    "emails": [{"primary": True, "type": "work", "value": "test.user@contoso.com"}],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "Tess User", "familyName": "User", "givenName": "Tess"},
    "roles": [],
    ENTERPRISE: {"department": "Research", "employeeNumber": "42"},
}


async def entra_user(http: httpx.AsyncClient, token: str) -> str:
    # Entra first looks the user up by its matching attribute, then creates it.
    found = await send(
        http, "GET", '/Users?filter=userName eq "Test_User_ab6490ee@contoso.com"', token
    )
    assert found["totalResults"] == 0
    created = await send(http, "POST", "/Users", token, ENTRA_CREATE)
    user_id: str = created["id"]
    return user_id


async def test_given_entra_creates_a_user_then_it_is_invited_and_found_by_its_user_name(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    emails_before = await invitation_emails()

    user_id = await entra_user(client, principals.api_token)
    found = await send(
        client,
        "GET",
        '/Users?filter=userName eq "Test_User_ab6490ee@contoso.com"',
        principals.api_token,
    )

    assert [user["id"] for user in found["Resources"]] == [user_id]
    account = await seen(client, principals, user_id)
    assert account["user"]["status"] == "INVITED"
    assert account["user"]["email"] == "test.user@contoso.com"
    assert account["user"]["invitation"]["status"] == "PENDING"
    assert await invitation_emails() == emails_before + 1


async def test_given_entra_disables_with_a_false_string_then_the_licence_is_released(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    user_id = await entra_user(client, principals.api_token)
    in_use = (await seen(client, principals, user_id))["licenses"]["inUse"]

    answer = await send(
        client,
        "PATCH",
        f"/Users/{user_id}",
        principals.api_token,
        patch({"op": "Replace", "path": "active", "value": "False"}),
    )

    assert answer["active"] is False
    account = await seen(client, principals, user_id)
    assert account["user"]["status"] == "DISABLED"
    assert account["user"]["invitation"]["status"] == "REVOKED"
    assert account["licenses"]["inUse"] == in_use - 1


async def test_given_entra_patches_without_a_path_then_dotted_and_urn_keys_apply(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    user_id = await entra_user(client, principals.api_token)

    await send(
        client,
        "PATCH",
        f"/Users/{user_id}",
        principals.api_token,
        patch(
            {
                "op": "replace",
                "value": {
                    "name.givenName": "Theresa",
                    f"{CORE}:title": "Engineer",
                    f"{ENTERPRISE}:department": "Platform",
                },
            }
        ),
    )

    user = (await seen(client, principals, user_id))["user"]
    assert (user["firstName"], user["lastName"], user["qualification"]) == (
        "Theresa",
        "User",
        "Engineer",
    )


async def test_given_entra_replaces_the_work_email_then_the_invitation_moves_to_it(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    user_id = await entra_user(client, principals.api_token)
    emails_before = await invitation_emails()

    await send(
        client,
        "PATCH",
        f"/Users/{user_id}",
        principals.api_token,
        patch(
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "updated.email@contoso.com",
            },
            {"op": "Replace", "path": "name.familyName", "value": "Updated"},
        ),
    )

    user = (await seen(client, principals, user_id))["user"]
    assert user["email"] == "updated.email@contoso.com"
    assert user["lastName"] == "Updated"
    assert user["invitation"]["email"] == "updated.email@contoso.com"
    assert await invitation_emails() == emails_before + 1


async def test_given_entra_enables_a_disabled_user_then_the_licence_is_given_back(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    user_id = await entra_user(client, principals.api_token)
    off = patch({"op": "Replace", "path": "active", "value": "False"})
    on = patch({"op": "Replace", "path": "active", "value": "True"})
    await send(client, "PATCH", f"/Users/{user_id}", principals.api_token, off)

    answer = await send(client, "PATCH", f"/Users/{user_id}", principals.api_token, on)

    assert answer["active"] is True
    assert (await seen(client, principals, user_id))["user"]["status"] == "INVITED"


# --- Okta ------------------------------------------------------------------------

OKTA_CREATE = {
    "schemas": [CORE],
    "userName": "test.user@example.org",
    "name": {"givenName": "Test", "familyName": "User"},
    "emails": [{"primary": True, "value": "test.user@example.org", "type": "work"}],
    "displayName": "Test User",
    "locale": "en-US",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "groups": [],
    "password": "1mz050nq",
    "active": True,
}


async def okta_user(http: httpx.AsyncClient, token: str) -> str:
    found = await send(
        http,
        "GET",
        '/Users?filter=userName eq "test.user@example.org"&startIndex=1&count=100',
        token,
    )
    assert found["totalResults"] == 0
    created = await send(http, "POST", "/Users", token, OKTA_CREATE)
    user_id: str = created["id"]
    return user_id


async def test_given_okta_creates_a_user_with_a_password_then_it_is_invited_anyway(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    user_id = await okta_user(client, principals.api_token)

    answer = await send(client, "GET", f"/Users/{user_id}", principals.api_token)

    assert "password" not in answer
    assert answer["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert (await seen(client, principals, user_id))["user"]["status"] == "INVITED"


async def test_given_okta_puts_a_profile_update_then_names_and_title_change(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    user_id = await okta_user(client, principals.api_token)
    body = {
        **OKTA_CREATE,
        "id": user_id,
        "name": {"givenName": "Tester", "familyName": "Person"},
        "title": "Analyst",
    }

    await send(client, "PUT", f"/Users/{user_id}", principals.api_token, body)

    user = (await seen(client, principals, user_id))["user"]
    assert (user["firstName"], user["lastName"], user["qualification"]) == (
        "Tester",
        "Person",
        "Analyst",
    )
    assert user["status"] == "INVITED"


async def test_given_okta_deactivates_and_reactivates_then_the_licence_goes_and_comes_back(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    user_id = await okta_user(client, principals.api_token)

    off = await send(
        client,
        "PATCH",
        f"/Users/{user_id}",
        principals.api_token,
        patch({"op": "replace", "value": {"active": False}}),
    )
    disabled = await seen(client, principals, user_id)
    on = await send(
        client,
        "PUT",
        f"/Users/{user_id}",
        principals.api_token,
        {**OKTA_CREATE, "id": user_id, "active": True},
    )
    enabled = await seen(client, principals, user_id)

    assert off["active"] is False and on["active"] is True
    assert disabled["user"]["status"] == "DISABLED"
    assert enabled["user"]["status"] == "INVITED"
    assert enabled["licenses"]["inUse"] == disabled["licenses"]["inUse"] + 1
