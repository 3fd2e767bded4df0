"""The one place a refusal becomes a SCIM error body (RFC 7644 section 3.12).

`detail` begins with the contract's ErrorCode, so a provider's log shows the
same reason the GraphQL API gives.
"""

from __future__ import annotations

from starlette.responses import Response

from api.failures import RETRY_AFTER_SECONDS
from api.scim.responses import scim_response
from domain.errors import DomainError, ErrorCode

# ErrorCode -> (HTTP status, scimType); unlisted codes are 400 without one.
_ANSWERS: dict[ErrorCode, tuple[int, str | None]] = {
    ErrorCode.UNAUTHENTICATED: (401, None),
    ErrorCode.FORBIDDEN: (403, None),
    ErrorCode.NOT_FOUND: (404, None),
    ErrorCode.EMAIL_TAKEN: (409, "uniqueness"),
    ErrorCode.NO_AVAILABLE_LICENSES: (403, None),
    ErrorCode.OWNER_LICENSE_REQUIRED: (400, "mutability"),
    ErrorCode.OWNER_ROLE_IMMUTABLE: (400, "mutability"),
    ErrorCode.ALREADY_LICENSED: (409, None),
    ErrorCode.NOT_LICENSED: (409, None),
    ErrorCode.INVALID_INPUT: (400, "invalidValue"),
}


class ScimRefusal(Exception):
    """A refusal of the SCIM layer itself (syntax, filter, version)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


def error_response(
    status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    body: dict[str, object] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(status),
        "detail": detail,
    }
    if scim_type is not None:
        body["scimType"] = scim_type
    return scim_response(body, status=status, headers=headers)


def domain_error_response(error: DomainError) -> Response:
    status, scim_type = _ANSWERS.get(error.code, (400, None))
    if error.code == ErrorCode.INVALID_INPUT and error.field == "filter":
        scim_type = "invalidFilter"
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if status == 401 else None
    return error_response(status, f"{error.code.value}: {error.message}", scim_type, headers)


def refusal_response(refusal: ScimRefusal) -> Response:
    return error_response(refusal.status, refusal.detail, refusal.scim_type)


def unavailable_response(request_id: str) -> Response:
    return error_response(
        503,
        f"{ErrorCode.SERVICE_UNAVAILABLE.value}: a dependency is down or busy; retry shortly "
        f"(request id {request_id}).",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
