"""GraphQL over HTTP for web clients, in front of `api.graphql_http.GraphQLEndpoint`.

What this layer adds, before and after the endpoint runs a request:

- Content negotiation. A client whose Accept header prefers
  `application/graphql-response+json` gets that media type, with the
  GraphQL-over-HTTP specification's statuses: an error before execution
  (JSON body, document parse or validation, variables, authentication,
  idempotency, persisted queries) answers 4xx (503 when a dependency is down)
  and its body has no `data` key; once execution started, 200. Any other
  Accept (none, `*/*`, `application/json`, or nothing we serve) gets
  `application/json` exactly as before.
- Persisted queries (api.persisted_queries): a hash-only request gets its
  document put in before the endpoint sees it, so authentication,
  idempotency fingerprints and metrics see an ordinary request.
- GET (and HEAD) never run a mutation: 405 with `Allow: POST`.
- HEAD is answered as GET would be (status and headers, Content-Length
  included), without the body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

from graphql import OperationType
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from api.failures import INTERNAL_ERROR_CODE, answer_for
from api.graphql_request import operation_of
from api.logs import request_id_var
from api.middleware import PRINCIPAL_KEY
from api.persisted_queries import PersistedQueries, PersistedQueryError, Resolved
from domain.errors import DependencyUnavailable, ErrorCode

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
_UNREADABLE = object()
# Status of an error before execution, for application/graphql-response+json.
_STATUS_BY_CODE = {
    ErrorCode.UNAUTHENTICATED.value: 401,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE.value: 409,
    ErrorCode.IDEMPOTENCY_KEY_REUSED.value: 422,
    ErrorCode.SERVICE_UNAVAILABLE.value: 503,
    INTERNAL_ERROR_CODE: 500,
}


def negotiate(accept: str | None) -> str:
    """The media type to answer with: the Accept header's preferred one of the
    two we serve (the earlier on a tie); application/json when it names
    neither exactly (wildcards mean application/json, the legacy default)."""
    best, best_q = JSON, -1.0
    for item in (accept or "").split(","):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        if media not in (GRAPHQL_RESPONSE, JSON, "*/*", "application/*"):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0 or q <= best_q:
            continue
        best, best_q = (GRAPHQL_RESPONSE if media == GRAPHQL_RESPONSE else JSON), q
    return best


def _json_object(raw: str | bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _UNREADABLE


def before_execution(body: Mapping[str, Any]) -> bool:
    """True when a GraphQL response body answers an error that came before
    execution: no data, or data null with only errors that have no path."""
    errors = body.get("errors") or []
    if "data" not in body:
        return bool(errors)
    return (
        body["data"] is None
        and bool(errors)
        and all(not (isinstance(e, dict) and e.get("path")) for e in errors)
    )


def _codes(body: Mapping[str, Any]) -> list[str]:
    return [
        str((error.get("extensions") or {}).get("code"))
        for error in body.get("errors") or ()
        if isinstance(error, dict)
    ]


def _request_error_status(body: Mapping[str, Any]) -> int:
    statuses = [_STATUS_BY_CODE.get(code, 400) for code in _codes(body)]
    return max(statuses, default=400)


class WebGraphQL:
    """ASGI endpoint for /graphql wrapping GraphQLEndpoint (see the module doc)."""

    def __init__(self, endpoint: ASGIApp, *, persisted: PersistedQueries) -> None:
        self.endpoint = endpoint
        self.persisted = persisted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        media = negotiate(headers.get("accept"))
        method = scope["method"]
        head = method == "HEAD"
        body = await _read_body(receive) if method == "POST" else b""
        original = (scope["method"], scope["query_string"])
        try:
            if head:
                scope["method"] = "GET"
            try:
                resolved, body = await self._resolve(scope, headers, body)
            except PersistedQueryError as refusal:
                metrics.GRAPHQL_ERRORS.labels(code=refusal.code.value, kind="top_level").inc()
                answer = _error_response(refusal.code, refusal.message, status=refusal.status)
                await self._send(answer, media, head, scope, send)
                return
            except DependencyUnavailable as down:
                answer = answer_for(down, request_id_var.get() or "-")
                await self._send(answer, media, head, scope, send)
                return
            if scope["method"] == "GET" and self._get_mutation(scope):
                metrics.GRAPHQL_ERRORS.labels(code="HTTP_405", kind="top_level").inc()
                answer = _error_response(
                    ErrorCode.INVALID_INPUT,
                    "Mutations are sent with POST.",
                    status=405,
                    headers={"Allow": "POST"},
                )
                await self._send(answer, media, head, scope, send)
                return
            if media == JSON and resolved.learn is None and not head:
                # Nothing to rewrite or learn: the endpoint answers directly.
                await self.endpoint(scope, _replay(body), send)
                return
            try:
                start, chunks = await self._run(scope, body)
            except Exception as exc:
                if media != GRAPHQL_RESPONSE:
                    raise  # the request boundary answers, as it always did
                # The same answer, in the negotiated media type.
                answer = answer_for(exc, request_id_var.get() or "-")
                await self._send(answer, media, head, scope, send)
                return
        finally:
            scope["method"], scope["query_string"] = original
        status, response_headers, content = start["status"], start["headers"], b"".join(chunks)
        decoded = _json_body(response_headers, content)
        if decoded is not None:
            failed_early = status >= 400 or before_execution(decoded)
            if resolved.learn is not None and not failed_early and scope.get(PRINCIPAL_KEY):
                await self.persisted.learn(*resolved.learn)
            if media == GRAPHQL_RESPONSE:
                status, content = _as_graphql_response(status, decoded, content, failed_early)
                response_headers = _with_content_type(response_headers, content)
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": b"" if head else content})

    async def _resolve(self, scope: Scope, headers: Headers, body: bytes) -> tuple[Resolved, bytes]:
        """Put a persisted document in the request when it named one by hash."""
        if scope["method"] == "GET":
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            params = dict(pairs)
            if "extensions" not in params and not self.persisted.allowlist:
                return Resolved(), body
            extensions = _json_object(params.get("extensions"))
            resolved = await self.persisted.resolve(params.get("query") or None, extensions)
            if resolved.document is not None:
                pairs = [(k, v) for k, v in pairs if k != "query"]
                pairs.append(("query", resolved.document))
                scope["query_string"] = urlencode(pairs).encode("latin-1")
            return resolved, body
        if scope["method"] != "POST" or "json" not in headers.get("content-type", "").lower():
            return Resolved(), body
        if b"persistedQuery" not in body and not self.persisted.allowlist:
            return Resolved(), body
        decoded = _json_object(body)
        if not isinstance(decoded, dict):
            return Resolved(), body
        resolved = await self.persisted.resolve(decoded.get("query"), decoded.get("extensions"))
        if resolved.document is not None:
            decoded["query"] = resolved.document
            # ASCII escapes: an unpaired surrogate in the variables stays an
            # escape, which the endpoint refuses (400), instead of failing here.
            body = json.dumps(decoded).encode("ascii")
        return resolved, body

    @staticmethod
    def _get_mutation(scope: Scope) -> bool:
        params = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        query = params.get("query")
        if not query:
            return False
        operation = operation_of(str(query), params.get("operationName") or None)
        return operation is not None and operation.type == OperationType.MUTATION.value

    async def _run(self, scope: Scope, body: bytes) -> tuple[Message, list[bytes]]:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.endpoint(scope, _replay(body), capture)
        return start, chunks

    @staticmethod
    async def _send(
        response: JSONResponse, media: str, head: bool, scope: Scope, send: Send
    ) -> None:
        content = bytes(response.body)
        status = response.status_code
        headers = list(response.raw_headers)
        if media == GRAPHQL_RESPONSE:
            decoded = json.loads(content)
            status, content = _as_graphql_response(status, decoded, content, True)
            headers = _with_content_type(headers, content)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else content})


def _replay(body: bytes) -> Receive:
    """A receive callable that hands the endpoint the body read already."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _error_response(
    code: ErrorCode, message: str, *, status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A top-level error in the shape application/json clients already get."""
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code.value}}]},
        status_code=status,
        headers=dict(headers or {}),
    )


def _json_body(headers: Sequence[tuple[bytes, bytes]], content: bytes) -> dict[str, Any] | None:
    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
    if not content_type.lower().startswith(JSON.encode()):
        return None
    decoded = _json_object(content)
    return decoded if isinstance(decoded, dict) else None


def _as_graphql_response(
    status: int, body: dict[str, Any], content: bytes, failed_early: bool
) -> tuple[int, bytes]:
    """Status and body for application/graphql-response+json."""
    if not failed_early:
        return status, content
    if status < 400:
        status = _request_error_status(body)
    body = {key: value for key, value in body.items() if key != "data"}
    return status, json.dumps(body, separators=(",", ":")).encode("ascii")


def _with_content_type(
    headers: Sequence[tuple[bytes, bytes]], content: bytes
) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in headers if k.lower() not in (b"content-type", b"content-length")]
    return [
        *kept,
        (b"content-type", f"{GRAPHQL_RESPONSE}; charset=utf-8".encode()),
        (b"content-length", str(len(content)).encode()),
    ]
