"""Our users as SCIM User resources, and a provider's User as the state it wants.

Requests are read with the full core + enterprise model (scim2-models), so
the attributes providers send that we do not keep (department, manager,
phone numbers, a password) are accepted and dropped; responses carry what
we keep, as /Schemas describes it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Context,
    Email,
    EnterpriseUser,
    Meta,
    Name,
    ResponseParameters,
    SCIMException,
)
from scim2_models import User as ScimUser

from api.scim.errors import ScimRefusal
from domain.models import User
from domain.rules.provisioning import SentEmail, chosen_email, derived_names
from domain.services.provisioning import DesiredUser, user_name_of

FullUser = ScimUser[EnterpriseUser]


def resource(user: User, *, base_url: str) -> FullUser:
    """The user as the model PATCH operations apply to: its one email is the
    primary work address, so `emails[type eq "work"]` designates it."""
    return FullUser(
        id=str(user.id),
        external_id=user.external_id,
        user_name=user_name_of(user),
        name=Name(given_name=user.first_name, family_name=user.last_name),
        display_name=user.name,
        title=user.qualification,
        active=user.holds_license,
        emails=[Email(value=user.email, type=Email.Type.work, primary=True)],
        meta=Meta(
            resource_type="User",
            created=user.created_at,
            location=f"{base_url}/Users/{user.id}",
        ),
    )


def representation(
    user: User, *, base_url: str, parameters: ResponseParameters[Any] | None = None
) -> dict[str, Any]:
    """The response body: what /Schemas describes, with a weak ETag of it."""
    body = resource(user, base_url=base_url).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    body["emails"] = [{"value": user.email}]
    body["meta"]["version"] = etag(body)
    if parameters is None or not (parameters.attributes or parameters.excluded_attributes):
        return body
    selected = FullUser.model_validate(body).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=parameters
    )
    if "emails" in selected:
        selected["emails"] = [{"value": user.email}]
    return selected


def etag(body: dict[str, Any]) -> str:
    """A weak ETag: a hash of the representation without its meta."""
    content = {name: value for name, value in body.items() if name != "meta"}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]
    return f'W/"{digest}"'


def parse_user(body: Any, context: Context) -> FullUser:
    if not isinstance(body, dict):
        raise ScimRefusal(400, "The body must be a JSON object.", "invalidSyntax")
    try:
        return FullUser.model_validate(body, scim_ctx=context)
    except (ValidationError, SCIMException) as error:
        raise ScimRefusal(400, _first_error(error), "invalidValue") from None


def _first_error(error: Exception) -> str:
    if isinstance(error, ValidationError) and error.errors():
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"INVALID_INPUT: {where}: {first['msg']}"
    return f"INVALID_INPUT: {error}"


def desired(user: FullUser, *, default_active: bool = True) -> DesiredUser:
    """The state a provider's User asks for (a pushed password is ignored)."""
    if not user.user_name or not user.user_name.strip():
        raise ScimRefusal(400, "INVALID_INPUT: userName is required.", "invalidValue")
    emails = [
        SentEmail(
            value=email.value or "",
            type=str(getattr(email.type, "value", email.type) or ""),
            primary=bool(email.primary),
        )
        for email in user.emails or []
    ]
    address = chosen_email(emails, user.user_name)
    first, last = derived_names(
        given=user.name.given_name if user.name else None,
        family=user.name.family_name if user.name else None,
        display_name=user.display_name,
        email=address,
    )
    return DesiredUser(
        user_name=user.user_name,
        email=address,
        first_name=first,
        last_name=last,
        qualification=user.title,
        external_id=user.external_id,
        active=default_active if user.active is None else bool(user.active),
    )
