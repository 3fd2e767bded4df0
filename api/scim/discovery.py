"""ServiceProviderConfig, ResourceTypes and Schemas: Users only, no Groups,
no bulk, no sort; /Schemas describes the attributes we keep and enforce."""

from __future__ import annotations

from typing import Any

from scim2_models import Context
from scim2_models import User as ScimUser

from api.scim.filters import CORE_USER

MAX_RESULTS = 200

# The core User attributes we keep, and the sub-attributes of each.
_KEPT: dict[str, set[str] | None] = {
    "userName": None,
    "name": {"givenName", "familyName"},
    "displayName": None,
    "title": None,
    "active": None,
    "emails": {"value"},
}
_ALWAYS = {"name", "emails", "active"}


def service_provider_config(base_url: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "API token",
                "description": "An API token with the SCIM scope, as a bearer token.",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }


def user_resource_type(base_url: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "A user of the account; active means it holds a licence.",
        "schema": CORE_USER,
        "schemaExtensions": [],
        "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/User"},
    }


def user_schema(base_url: str) -> dict[str, Any]:
    schema = ScimUser.to_schema().model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    kept = []
    for attribute in schema["attributes"]:
        name = attribute["name"]
        if name not in _KEPT:
            continue
        subs = _KEPT[name]
        if subs is not None:
            attribute["subAttributes"] = [
                sub for sub in attribute.get("subAttributes", []) if sub["name"] in subs
            ]
        if name == "displayName":
            # Always "first last": what a provider sends only helps derive names.
            attribute["mutability"] = "readOnly"
        if name in _ALWAYS:
            # Every user has them: one address, both names (derived when
            # omitted: displayName, else the email), and a licence or not.
            attribute["required"] = True
            for sub in attribute.get("subAttributes", []):
                sub["required"] = True
        kept.append(attribute)
    schema["attributes"] = kept
    schema["meta"] = {"resourceType": "Schema", "location": f"{base_url}/Schemas/{CORE_USER}"}
    return schema


def list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
