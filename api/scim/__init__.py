"""SCIM 2.0 provisioning at /scim/v2 (RFC 7643/7644, SPEC section 9): Users
only; see docs/scim.md."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount, Route

from api.scim import discovery, users
from api.scim.endpoint import Handler, base_url, scim_endpoint
from api.scim.errors import ScimRefusal
from api.scim.filters import CORE_USER
from api.scim.responses import scim_response
from domain.clock import Clock
from domain.principal import Principal


async def _service_provider_config(request: Request, actor: Principal, clock: Clock) -> Response:
    return scim_response(discovery.service_provider_config(base_url(request)))


async def _resource_types(request: Request, actor: Principal, clock: Clock) -> Response:
    return scim_response(discovery.list_response([discovery.user_resource_type(base_url(request))]))


async def _resource_type(request: Request, actor: Principal, clock: Clock) -> Response:
    if request.path_params["id"] != "User":
        raise ScimRefusal(404, "Only the User resource type is served.")
    return scim_response(discovery.user_resource_type(base_url(request)))


async def _schemas(request: Request, actor: Principal, clock: Clock) -> Response:
    return scim_response(discovery.list_response([discovery.user_schema(base_url(request))]))


async def _schema(request: Request, actor: Principal, clock: Clock) -> Response:
    if request.path_params["id"] != CORE_USER:
        raise ScimRefusal(404, "Only the core User schema is served.")
    return scim_response(discovery.user_schema(base_url(request)))


def scim_mount(clock: Clock) -> Mount:
    def route(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, scim_endpoint(handler, clock), methods=methods)

    routes = [
        route("/ServiceProviderConfig", _service_provider_config, ["GET"]),
        route("/ResourceTypes", _resource_types, ["GET"]),
        route("/ResourceTypes/{id}", _resource_type, ["GET"]),
        route("/Schemas", _schemas, ["GET"]),
        route("/Schemas/{id}", _schema, ["GET"]),
        route("/Users", users.list_users, ["GET"]),
        route("/Users", users.create_user, ["POST"]),
        # Searches at the root cover every resource type: here, Users.
        route("/Users/.search", users.search_users, ["POST"]),
        route("/.search", users.search_users, ["POST"]),
        route("/Users/{id}", users.get_user, ["GET"]),
        route("/Users/{id}", users.replace_user, ["PUT"]),
        route("/Users/{id}", users.patch_user, ["PATCH"]),
        route("/Users/{id}", users.delete_user, ["DELETE"]),
    ]

    async def unknown(request: Request, actor: Principal, clock: Clock) -> Response:
        if any(known.matches(request.scope)[0] != Match.NONE for known in routes):
            raise ScimRefusal(405, f"{request.method} is not allowed here.")
        raise ScimRefusal(404, "No such SCIM endpoint: Users only (no Groups, no Bulk).")

    catch_all = route("/{path:path}", unknown, ["GET", "POST", "PUT", "PATCH", "DELETE"])
    return Mount("/scim/v2", routes=[*routes, catch_all])
