"""The boundary every HTTP request crosses: request id, body limit, failure answers, log line.

- The request id (a client's well-formed X-Request-ID, or a new one) is on
  every log line written while the request runs and on its response.
- Bodies over 1 MiB get 413. The rest of the body is read and dropped first
  (up to DRAIN_LIMIT_BYTES): a client that writes its whole body before
  reading would otherwise see the connection reset instead of the 413.
- An exception that escapes the app becomes SPEC section 6's answer
  (api.failures), counted in the HTTP metrics like any response.
- One log line per request: method, path, GraphQL operation name, status,
  duration, request id, principal kind and account id. Never a header value,
  token or variable.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from api.failures import answer_for
from api.logs import request_id_var
from domain.principal import Principal

access_log = logging.getLogger("licenses.access")

MAX_BODY_BYTES = 1024 * 1024
DRAIN_LIMIT_BYTES = 16 * MAX_BODY_BYTES
_INCOMING_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
ROUTES = frozenset(
    {"/graphql", "/healthz", "/readyz", "/metrics", "/export/users.csv", "/export/audit.csv"}
)

# Keys the endpoints set in the ASGI scope for the log line.
PRINCIPAL_KEY = "licenses.principal"
OPERATION_KEY = "licenses.operation"


class BodyTooLarge(Exception):
    pass


def _too_large() -> JSONResponse:
    return JSONResponse(
        {
            "errors": [
                {
                    "message": "Request body larger than 1 MiB.",
                    "extensions": {"code": "INVALID_INPUT"},
                }
            ]
        },
        status_code=413,
        headers={"Connection": "close"},
    )


async def _drain(receive: Receive, already: int) -> None:
    """Read and drop what is left of the body, up to DRAIN_LIMIT_BYTES in all."""
    received = already
    while received <= DRAIN_LIMIT_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class RequestBoundaryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _INCOMING_REQUEST_ID.match(incoming) else secrets.token_hex(8)
        token = request_id_var.set(request_id)
        route = scope["path"] if scope["path"] in ROUTES else "other"
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
                metrics.HTTP_RESPONSES.labels(route=route, status=str(status)).inc()
            await send(message)

        received = 0
        body_done = False

        async def bounded_receive() -> Message:
            nonlocal received, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge
            return message

        try:
            declared = int(headers.get(b"content-length", b"0") or b"0")
        except ValueError:
            declared = 0
        try:
            if declared > MAX_BODY_BYTES:
                raise BodyTooLarge
            await self.app(scope, bounded_receive, send_with_id)
        except BodyTooLarge:
            if status is None:
                if not body_done:
                    await _drain(receive, received)
                await _too_large()(scope, receive, send_with_id)
        except Exception as exc:  # the one place an escaped exception gets its answer
            if status is None:
                await answer_for(exc, request_id)(scope, receive, send_with_id)
            else:
                access_log.error("failed after the response started", exc_info=exc)
        finally:
            _log_request(scope, status, time.perf_counter() - started_at)
            request_id_var.reset(token)


def _log_request(scope: Scope, status: int | None, seconds: float) -> None:
    principal = scope.get(PRINCIPAL_KEY)
    operation = scope.get(OPERATION_KEY)
    kind = principal.kind.value if isinstance(principal, Principal) else "anonymous"
    account_id = principal.account_id if isinstance(principal, Principal) else None
    duration_ms = round(seconds * 1000, 1)
    access_log.info(
        "%s %s %s %.1fms op=%s principal=%s account=%s",
        scope["method"],
        scope["path"],
        status if status is not None else "-",
        duration_ms,
        operation or "-",
        kind,
        account_id if account_id is not None else "-",
        extra={
            "request_id": request_id_var.get(),
            "method": scope["method"],
            "path": scope["path"],
            "operation": operation,
            "status": status,
            "duration_ms": duration_ms,
            "principal": kind,
            "account_id": account_id,
        },
    )
