"""SCIM 2.0 at /scim/v2 (SPEC section 9): token scopes, Users, filters, refusals."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tortoise.exceptions import DBConnectionError

from domain.enums import AuditAction, EmailKind, UserStatus
from domain.models import AuditEvent, OutboxMessage, User
from tests.support.http_client import auth_headers, gql, payload_of
from tests.support.principals import Principals
from tests.support.snapshot import database_snapshot

pytestmark = pytest.mark.anyio

SCIM = "/scim/v2"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CREATE_TOKEN = """
mutation ($scopes: [ApiTokenScope!]) {
  createApiToken(name: "idp", scopes: $scopes) { apiToken { scopes } secret errors { code } }
}"""


def scim_user(user_name: str, *, active: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Grace", "familyName": "Hopper"},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": active,
        **extra,
    }


async def scim(
    http: httpx.AsyncClient, method: str, path: str, token: str, body: Any = None
) -> httpx.Response:
    return await http.request(
        method,
        SCIM + path,
        json=body,
        headers=auth_headers(token, {"Content-Type": "application/scim+json"}),
    )


async def token_with(http: httpx.AsyncClient, admin_token: str, scopes: list[str] | None) -> str:
    variables = {"scopes": scopes} if scopes is not None else {}
    body = await gql(http, CREATE_TOKEN, token=admin_token, variables=variables)
    secret: str = payload_of(body, "createApiToken")["secret"]
    return secret


# --- token scopes -------------------------------------------------------------


async def test_given_create_api_token_without_scopes_when_created_then_it_opens_graphql_only(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    body = await gql(client, CREATE_TOKEN, token=principals.admin_token)

    assert payload_of(body, "createApiToken")["apiToken"]["scopes"] == ["GRAPHQL"]


async def test_given_a_graphql_only_token_when_it_calls_scim_then_403(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    token = await token_with(client, principals.admin_token, None)

    response = await scim(client, "GET", "/Users", token)

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/scim+json")
    assert response.json()["detail"].startswith("FORBIDDEN")


async def test_given_a_session_when_it_calls_scim_then_403(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    response = await scim(client, "GET", "/Users", principals.owner_token)

    assert response.status_code == 403


async def test_given_no_token_when_scim_is_called_then_401_with_a_scim_error(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    response = await client.get(SCIM + "/Users")

    assert response.status_code == 401
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


async def test_given_a_scim_only_token_when_it_calls_graphql_then_forbidden(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    token = await token_with(client, principals.admin_token, ["SCIM"])

    body = await gql(client, "{ account { name } }", token=token)

    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await scim(client, "GET", "/Users", token)).status_code == 200


async def test_given_the_account_token_when_listed_then_it_has_both_scopes(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    body = await gql(client, "{ account { apiTokens { scopes } } }", token=principals.owner_token)

    assert body["data"]["account"]["apiTokens"] == [{"scopes": ["GRAPHQL", "SCIM"]}]


# --- users --------------------------------------------------------------------


async def test_given_an_active_user_when_created_then_it_is_invited_with_an_email(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    emails_before = await OutboxMessage.filter(kind=EmailKind.INVITATION).count()

    response = await scim(
        client, "POST", "/Users", principals.api_token, scim_user("grace@example.com")
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["active"] is True
    assert body["userName"] == "grace@example.com"
    assert response.headers["location"].endswith(f"/scim/v2/Users/{body['id']}")
    user = await User.get(id=int(body["id"]))
    assert user.status == UserStatus.INVITED
    assert await OutboxMessage.filter(kind=EmailKind.INVITATION).count() == emails_before + 1


async def test_given_users_when_filtered_then_only_the_matches_are_listed_by_page(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    for name in ("ann@example.com", "bob@example.com"):
        created = await scim(
            client, "POST", "/Users", principals.api_token, scim_user(name, externalId=name[:3])
        )
        assert created.status_code == 201
    token = principals.api_token

    by_name = await scim(client, "GET", '/Users?filter=userName eq "ANN@example.com"', token)
    by_email = await scim(
        client, "GET", '/Users?filter=emails[type eq "work"].value eq "bob@example.com"', token
    )
    both = await scim(
        client,
        "GET",
        '/Users?filter=externalId eq "ann" and emails.value eq "ann@example.com"',
        token,
    )
    page = await scim(client, "GET", "/Users?startIndex=2&count=2", token)
    made_outside_scim = await scim(
        client, "GET", '/Users?filter=userName eq "MIA@example.com"', token
    )

    assert [user["userName"] for user in by_name.json()["Resources"]] == ["ann@example.com"]
    assert [user["userName"] for user in by_email.json()["Resources"]] == ["bob@example.com"]
    assert [user["externalId"] for user in both.json()["Resources"]] == ["ann"]
    assert [user["id"] for user in made_outside_scim.json()["Resources"]] == [
        str(principals.member_id)
    ]
    # Acme's owner, admin and member come first (users made outside SCIM).
    assert page.json()["totalResults"] == 5
    assert [user["userName"] for user in page.json()["Resources"]] == [
        "adam@example.com",
        "mia@example.com",
    ]


async def test_given_a_filter_that_does_not_parse_when_listed_then_400_invalid_filter(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    response = await scim(client, "GET", "/Users?filter=userName eq", principals.api_token)

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"


async def test_given_a_user_when_deleted_then_disabled_unlisted_and_kept(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    created = await scim(
        client, "POST", "/Users", principals.api_token, scim_user("dee@example.com")
    )
    user_id = created.json()["id"]

    deleted = await scim(client, "DELETE", f"/Users/{user_id}", principals.api_token)
    fetched = await scim(client, "GET", f"/Users/{user_id}", principals.api_token)
    listed = await scim(
        client, "GET", '/Users?filter=userName eq "dee@example.com"', principals.api_token
    )

    assert deleted.status_code == 204
    assert fetched.status_code == 404
    assert listed.json()["totalResults"] == 0
    user = await User.get(id=int(user_id))
    assert user.status == UserStatus.DISABLED and user.deprovisioned_at is not None
    assert await AuditEvent.filter(action=AuditAction.USER_DEPROVISIONED).count() == 1


async def test_given_a_deprovisioned_user_when_posted_again_then_the_record_is_relinked(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    created = await scim(
        client, "POST", "/Users", principals.api_token, scim_user("eli@example.com")
    )
    user_id = created.json()["id"]
    await scim(client, "DELETE", f"/Users/{user_id}", principals.api_token)

    again = await scim(client, "POST", "/Users", principals.api_token, scim_user("eli@example.com"))

    assert again.status_code == 201
    assert again.json()["id"] == user_id
    assert (await User.get(id=int(user_id))).status == UserStatus.INVITED


# --- refusals change nothing ----------------------------------------------------


async def assert_scim_refused_unchanged(
    http: httpx.AsyncClient, method: str, path: str, token: str, body: Any, status: int
) -> dict[str, Any]:
    # The token's "last used" stamp is written on its first request, not by the refusal.
    await scim(http, "GET", "/ServiceProviderConfig", token)
    before = await database_snapshot()
    response = await scim(http, method, path, token, body)
    assert response.status_code == status, response.text
    assert await database_snapshot() == before
    answer: dict[str, Any] = response.json()
    return answer


async def test_given_no_free_licence_when_an_active_user_is_created_then_403_and_nothing_changes(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    for name in ("f1@example.com", "f2@example.com"):
        assert (
            await scim(client, "POST", "/Users", principals.api_token, scim_user(name))
        ).status_code == 201

    answer = await assert_scim_refused_unchanged(
        client, "POST", "/Users", principals.api_token, scim_user("f3@example.com"), 403
    )

    assert answer["detail"].startswith("NO_AVAILABLE_LICENSES")


async def test_given_the_owner_when_deactivated_then_400_mutability_and_nothing_changes(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    patch = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }

    answer = await assert_scim_refused_unchanged(
        client, "PATCH", f"/Users/{principals.owner_id}", principals.api_token, patch, 400
    )

    assert answer["scimType"] == "mutability"
    assert answer["detail"].startswith("OWNER_LICENSE_REQUIRED")


async def test_given_the_owner_when_deleted_then_400_mutability_and_nothing_changes(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    answer = await assert_scim_refused_unchanged(
        client, "DELETE", f"/Users/{principals.owner_id}", principals.api_token, None, 400
    )

    assert answer["detail"].startswith("OWNER_LICENSE_REQUIRED")


async def test_given_an_email_in_the_account_when_created_then_409_and_nothing_changes(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    answer = await assert_scim_refused_unchanged(
        client, "POST", "/Users", principals.api_token, scim_user("Mia@example.com"), 409
    )

    assert answer["scimType"] == "uniqueness"


async def test_given_discovery_when_read_then_users_only_without_groups(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    config = await scim(client, "GET", "/ServiceProviderConfig", principals.api_token)
    types = await scim(client, "GET", "/ResourceTypes", principals.api_token)
    schemas = await scim(client, "GET", "/Schemas", principals.api_token)

    assert config.json()["patch"]["supported"] is True
    assert [kind["name"] for kind in types.json()["Resources"]] == ["User"]
    assert [schema["id"] for schema in schemas.json()["Resources"]] == [USER_SCHEMA]


async def test_given_a_provider_change_when_audited_then_the_actor_is_the_api_token(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    created = await scim(
        client, "POST", "/Users", principals.api_token, scim_user("gus@example.com")
    )
    user_id = int(created.json()["id"])
    replace = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "emails", "value": [{"value": "g@example.com"}]}],
    }

    await scim(client, "PATCH", f"/Users/{user_id}", principals.api_token, replace)

    events = await AuditEvent.filter(target_user_id=user_id).order_by("id")
    assert [event.action for event in events] == [
        AuditAction.USER_INVITED,
        AuditAction.USER_UPDATED,
    ]
    assert all(event.actor_kind == "API_TOKEN" and event.actor_token_id for event in events)
    assert events[1].data == {
        "before": {"email": "gus@example.com"},
        "after": {"email": "g@example.com"},
    }


async def test_given_the_database_down_when_users_are_listed_then_503_with_retry_after(
    client: httpx.AsyncClient, principals: Principals, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(**_: Any) -> None:
        raise DBConnectionError("connection refused")

    await scim(client, "GET", "/ServiceProviderConfig", principals.api_token)
    monkeypatch.setattr("api.scim.users.list_provisioned", down)

    response = await scim(client, "GET", "/Users", principals.api_token)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["detail"].startswith("SERVICE_UNAVAILABLE")


async def test_given_a_stale_etag_when_a_change_is_sent_then_412_and_a_current_one_applies(
    client: httpx.AsyncClient, principals: Principals
) -> None:
    created = await scim(
        client, "POST", "/Users", principals.api_token, scim_user("hal@example.com")
    )
    user_id, first_version = created.json()["id"], created.headers["etag"]
    rename = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "title", "value": "Pilot"}],
    }
    renamed = await scim(client, "PATCH", f"/Users/{user_id}", principals.api_token, rename)

    stale = await client.patch(
        f"{SCIM}/Users/{user_id}",
        json=rename,
        headers=auth_headers(principals.api_token, {"If-Match": first_version}),
    )
    current = await client.patch(
        f"{SCIM}/Users/{user_id}",
        json=rename,
        headers=auth_headers(principals.api_token, {"If-Match": renamed.headers["etag"]}),
    )

    assert renamed.headers["etag"] != first_version
    assert stale.status_code == 412
    assert current.status_code == 200 and current.json()["title"] == "Pilot"
