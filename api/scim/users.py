"""/Users: each handler unpacks the request, calls one service and wraps the result."""

from __future__ import annotations

from typing import Any

from scim2_models import Context, PatchOp, ResponseParameters, SCIMException
from starlette.requests import Request
from starlette.responses import Response

from api.scim.discovery import MAX_RESULTS
from api.scim.endpoint import base_url, json_body
from api.scim.errors import ScimRefusal
from api.scim.filters import criterion_of
from api.scim.mapping import FullUser, desired, parse_user, representation, resource
from api.scim.responses import scim_response
from domain.clock import Clock
from domain.models import User
from domain.principal import Principal
from domain.reads.provisioned import list_provisioned
from domain.services import provisioning


def _parameters(request: Request) -> ResponseParameters[Any] | None:
    return _parameters_of(
        {name: request.query_params.get(name) for name in ("attributes", "excludedAttributes")}
    )


def _parameters_of(raw: dict[str, Any]) -> ResponseParameters[Any] | None:
    given = {name: value for name, value in raw.items() if value}
    if not given:
        return None
    try:
        return ResponseParameters.model_validate(given)
    except Exception:
        raise ScimRefusal(400, "INVALID_INPUT: attributes do not parse.", "invalidPath") from None


def _integer(raw: Any, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ScimRefusal(
            400, f"INVALID_INPUT: {name} must be an integer.", "invalidValue"
        ) from None


def _version(request: Request, user: User) -> str:
    return str(representation(user, base_url=base_url(request))["meta"]["version"])


def _answer(request: Request, user: User, *, status: int = 200) -> Response:
    body = representation(user, base_url=base_url(request), parameters=_parameters(request))
    headers = {"ETag": _version(request, user), "Location": f"{base_url(request)}/Users/{user.id}"}
    return scim_response(body, status=status, headers=headers)


def _check_version(request: Request, user: User) -> None:
    """If-Match (RFC 7644 section 3.14): refuse a change made on a stale copy."""
    wanted = request.headers.get("if-match")
    if wanted is None or wanted.strip() == "*":
        return
    if _version(request, user) not in {tag.strip() for tag in wanted.split(",")}:
        raise ScimRefusal(412, "The resource changed since that version was read.")


async def list_users(request: Request, actor: Principal, clock: Clock) -> Response:
    return await _search(request, actor, dict(request.query_params))


async def search_users(request: Request, actor: Principal, clock: Clock) -> Response:
    """POST /Users/.search (RFC 7644 section 3.4.3): the same query in a body."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ScimRefusal(400, "INVALID_INPUT: the body must be a JSON object.", "invalidSyntax")
    listed = {
        name: ",".join(value) if isinstance(value, list) else value for name, value in body.items()
    }
    return await _search(request, actor, listed)


async def _search(request: Request, actor: Principal, query: dict[str, Any]) -> Response:
    text = query.get("filter")
    criterion = criterion_of(str(text)) if text else None
    start_index = max(_integer(query.get("startIndex"), "startIndex", 1), 1)
    count = min(max(_integer(query.get("count"), "count", 100), 0), MAX_RESULTS)
    page = await list_provisioned(
        actor=actor, criterion=criterion, start_index=start_index, count=count
    )
    parameters = _parameters_of(
        {name: query.get(name) for name in ("attributes", "excludedAttributes")}
    )
    resources = [
        representation(user, base_url=base_url(request), parameters=parameters)
        for user in page.users
    ]
    body: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": page.total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
    return scim_response(body)


async def get_user(request: Request, actor: Principal, clock: Clock) -> Response:
    user = await provisioning.find_provisioned(actor=actor, user_id=request.path_params["id"])
    version = _version(request, user)
    if request.headers.get("if-none-match") == version:
        return Response(status_code=304, headers={"ETag": version})
    return _answer(request, user)


async def create_user(request: Request, actor: Principal, clock: Clock) -> Response:
    sent = parse_user(await json_body(request), Context.RESOURCE_CREATION_REQUEST)
    user = await provisioning.provision_user(actor=actor, desired=desired(sent), clock=clock)
    return _answer(request, user, status=201)


async def replace_user(request: Request, actor: Principal, clock: Clock) -> Response:
    user_id = request.path_params["id"]
    current = await provisioning.find_provisioned(actor=actor, user_id=user_id)
    _check_version(request, current)
    sent = parse_user(await json_body(request), Context.RESOURCE_REPLACEMENT_REQUEST)
    user = await provisioning.replace_user(
        actor=actor, user_id=user_id, desired=desired(sent, default_active=True), clock=clock
    )
    return _answer(request, user)


async def patch_user(request: Request, actor: Principal, clock: Clock) -> Response:
    user_id = request.path_params["id"]
    current = await provisioning.find_provisioned(actor=actor, user_id=user_id)
    _check_version(request, current)
    body = await json_body(request)
    patched = resource(current, base_url=base_url(request))
    try:
        operations = PatchOp[FullUser].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        operations.patch(patched)
    except SCIMException as error:
        raise ScimRefusal(400, f"INVALID_INPUT: {error}", _scim_type(error)) from None
    except ValueError as error:
        raise ScimRefusal(400, f"INVALID_INPUT: {error}", "invalidValue") from None
    user = await provisioning.replace_user(
        actor=actor, user_id=user_id, desired=desired(patched), clock=clock
    )
    return _answer(request, user)


def _scim_type(error: SCIMException) -> str:
    return str(getattr(error, "scim_type", None) or "invalidValue")


async def delete_user(request: Request, actor: Principal, clock: Clock) -> Response:
    user_id = request.path_params["id"]
    current = await provisioning.find_provisioned(actor=actor, user_id=user_id)
    _check_version(request, current)
    await provisioning.deprovision_user(actor=actor, user_id=user_id, clock=clock)
    return Response(status_code=204)
