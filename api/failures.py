"""The answers of SPEC section 6: a dependency down or busy, or an unexpected fault.

One place maps an exception that escaped a request to its HTTP answer:
503 + Retry-After + SERVICE_UNAVAILABLE when a dependency is down or busy,
otherwise a masked 500 (never Starlette's bare text/plain one). Both are
JSON GraphQL bodies carrying the request id, so a client, the log line and
the X-Request-ID header all name the same request.
"""

from __future__ import annotations

import logging

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.responses import JSONResponse

from domain.errors import DependencyUnavailable, ErrorCode
from domain.unavailable import database_unavailable

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
INTERNAL_ERROR_CODE = "INTERNAL_SERVER_ERROR"


def unavailable_dependency(exc: BaseException) -> DependencyUnavailable | None:
    """The dependency that failed, when `exc` means "down or busy"."""
    found = database_unavailable(exc)
    if found is not None:
        return found
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            break
        if isinstance(current, RedisConnectionError | RedisTimeoutError):
            return DependencyUnavailable("redis", str(current) or type(current).__name__)
        current = current.__cause__ or current.__context__
    return None


def unavailable_error(request_id: str) -> dict[str, object]:
    """The top-level GraphQL error of a 503."""
    return {
        "message": f"Service temporarily unavailable; retry shortly (request id {request_id}).",
        "extensions": {"code": ErrorCode.SERVICE_UNAVAILABLE.value, "requestId": request_id},
    }


def unavailable_response(request_id: str) -> JSONResponse:
    return JSONResponse(
        {"data": None, "errors": [unavailable_error(request_id)]},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def internal_error_response(request_id: str) -> JSONResponse:
    return JSONResponse(
        {
            "data": None,
            "errors": [
                {
                    "message": f"Internal server error (request id {request_id})",
                    "extensions": {"code": INTERNAL_ERROR_CODE, "requestId": request_id},
                }
            ],
        },
        status_code=500,
    )


def answer_for(exc: BaseException, request_id: str) -> JSONResponse:
    """The response for an exception that escaped a request; logs it once."""
    dependency = unavailable_dependency(exc)
    if dependency is not None:
        log.warning("%s unavailable: %s", dependency.dependency, dependency.detail)
        return unavailable_response(request_id)
    log.error("unexpected error (request id %s)", request_id, exc_info=exc)
    return internal_error_response(request_id)
