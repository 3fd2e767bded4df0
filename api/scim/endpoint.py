"""Every SCIM request: the bearer token, the refusals, the failure answers.

A handler gets the request and a principal whose token has the SCIM scope;
whatever it raises becomes a SCIM error body here (SPEC section 6's 503 with
Retry-After included), never Starlette's text/plain.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.bearer import bearer_token
from api.failures import unavailable_dependency
from api.logs import request_id_var
from api.middleware import PRINCIPAL_KEY
from api.scim.errors import (
    ScimRefusal,
    domain_error_response,
    refusal_response,
    unavailable_response,
)
from domain.clock import Clock
from domain.enums import ApiTokenScope
from domain.errors import DomainError, ErrorCode
from domain.principal import Principal, require_scope
from domain.services import auth

log = logging.getLogger(__name__)

Handler = Callable[[Request, Principal, Clock], Awaitable[Response]]


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/scim/v2"


async def json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise ScimRefusal(400, "INVALID_INPUT: the body is not JSON.", "invalidSyntax") from None


def scim_endpoint(handler: Handler, clock: Clock) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            principal = await _authenticate(request, clock)
            return await handler(request, principal, clock)
        except DomainError as error:
            return domain_error_response(error)
        except ScimRefusal as refusal:
            return refusal_response(refusal)
        except Exception as exc:
            dependency = unavailable_dependency(exc)
            if dependency is None:
                raise
            log.warning("%s unavailable: %s", dependency.dependency, dependency.detail)
            return unavailable_response(request_id_var.get() or "-")

    return endpoint


async def _authenticate(request: Request, clock: Clock) -> Principal:
    bearer = bearer_token(request)
    if bearer is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Send an API token as a bearer token.")
    principal = await auth.authenticate(bearer=bearer, clock=clock)
    request.scope[PRINCIPAL_KEY] = principal
    require_scope(principal, ApiTokenScope.SCIM)
    return principal
