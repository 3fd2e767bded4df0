"""The GraphQL endpoint: authentication, idempotency keys, limits, masking, metrics.

Resolvers never see HTTP: this module turns the request into a principal and a
RequestContext, and the outcome into a response.

Idempotency-Key: the response stored for replays is the one sent, except that
API-token secrets are replaced by null: a replayed `createApiToken` carries
`secret: null` (the secret is shown once; a client that lost it revokes the
token and creates another). A response whose mutation produced nothing because
of an unexpected error ("Internal server error", every root field null) is not
stored: the mutation's transaction rolled back, so a retry with the same key
runs again instead of replaying the error for 24 hours.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError, OperationType, parse
from graphql.error import GraphQLSyntaxError
from graphql.utilities import get_operation_ast
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from api import metrics
from api.failures import INTERNAL_ERROR_CODE, unavailable_dependency, unavailable_response
from api.graphql_cache import DocumentCache
from api.graphql_over_http import HideSuggestions
from api.logs import request_id_var
from api.middleware import OPERATION_KEY, PRINCIPAL_KEY
from domain.clock import Clock
from domain.errors import DomainError, ErrorCode
from domain.principal import Principal
from domain.security import API_TOKEN_PREFIX
from domain.services import auth, idempotency
from schema import build_schema
from schema.authentication import root_field_names
from schema.context import RequestContext

PUBLIC_MUTATIONS = frozenset({"login", "acceptInvitation"})
MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 5000
# A request arriving while the first with its key still runs waits this long
# for the stored response before being told IDEMPOTENCY_KEY_IN_USE.
IN_USE_WAIT_SECONDS = 5.0
_OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MAX_METRIC_OPERATIONS = 200
_seen_operations: set[str] = set()
# An API token's secret: the prefix and 32 random bytes, URL-safe base64.
_API_TOKEN_SECRET = re.compile(rf"^{re.escape(API_TOKEN_PREFIX)}[A-Za-z0-9_-]{{43}}$")
# Set in the scope when a resolver met a dependency that is down: the whole
# response becomes SPEC section 6's 503 (a partial answer would hide it).
UNAVAILABLE_KEY = "licenses.unavailable"


def top_level_error(code: ErrorCode, message: str, *, status: int = 200) -> JSONResponse:
    metrics.GRAPHQL_ERRORS.labels(code=code.value, kind="top_level").inc()
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code.value}}]},
        status_code=status,
    )


def http_refusal(status: int, reason: str) -> JSONResponse:
    """A request refused before GraphQL runs (malformed body, content type, GET
    mutation, ...): its 4xx status, with a GraphQL-shaped JSON body."""
    error: dict[str, Any] = {"message": reason}
    code = ErrorCode.INVALID_INPUT.value if status in (400, 415) else f"HTTP_{status}"
    if status in (400, 415):
        error["extensions"] = {"code": code}
    metrics.GRAPHQL_ERRORS.labels(code=code, kind="top_level").inc()
    return JSONResponse({"data": None, "errors": [error]}, status_code=status)


class PublicMaskErrors(MaskErrors):
    """Mask unexpected errors; keep validation and deliberate (domain) errors.

    A masked error says "Internal server error" with the request id. Its stack
    trace is logged, under that id, by the schema's `process_errors` (which
    sees the original error before this extension replaces it): logging here
    too would write every failure twice.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=self._should_mask, error_message="Internal server error")

    @staticmethod
    def _should_mask(error: GraphQLError) -> bool:
        original = error.original_error
        return original is not None and not isinstance(original, GraphQLError | DomainError)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        request_id = request_id_var.get() or "-"
        if error.original_error is not None and unavailable_dependency(error.original_error):
            return GraphQLError(
                message="Service temporarily unavailable",
                path=error.path,
                extensions={"code": ErrorCode.SERVICE_UNAVAILABLE.value, "requestId": request_id},
            )
        return GraphQLError(
            message=f"Internal server error (request id {request_id})",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": INTERNAL_ERROR_CODE, "requestId": request_id},
        )

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            original = error.original_error
            if isinstance(original, DomainError):
                error.extensions = {**(error.extensions or {}), "code": original.code.value}
                if original.field:
                    error.extensions["field"] = original.field
            elif (
                error.path is None
                and "code" not in (error.extensions or {})
                and (original is None or isinstance(original, GraphQLError))
            ):
                # The request itself is at fault: syntax, validation, variable
                # values, limits (depth, aliases, tokens), introspection off.
                error.extensions = {
                    **(error.extensions or {}),
                    "code": ErrorCode.INVALID_INPUT.value,
                }
        return processed


# The depth and alias limits as validation rules built once, so that the
# rules are the same classes on every request and DocumentCache can remember
# which query texts passed them (the limiter extensions build new classes
# each time they are instantiated).
_LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
)


def schema_extensions(*, introspection: bool) -> list[Any]:
    extensions: list[Any] = [
        lambda: AddValidationRules(list(_LIMIT_RULES)),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        PublicMaskErrors,
        DocumentCache,
    ]
    if not introspection:
        extensions.extend([DisableIntrospection, HideSuggestions])
    return extensions


@dataclass(frozen=True)
class Operation:
    type: str
    # Root fields, through fragments too (aliases do not hide them).
    root_fields: frozenset[str]
    name: str | None


@lru_cache(maxsize=512)
def _operation_of(query: str, operation_name: object) -> Operation | None:
    """The operation a request runs, if the query parses and names one."""
    if operation_name is not None and not isinstance(operation_name, str):
        return None
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except (GraphQLSyntaxError, RecursionError):
        return None
    operation = get_operation_ast(document, operation_name)
    fields = root_field_names(document, operation_name)
    if operation is None or fields is None:
        return None
    return Operation(
        type=operation.operation.value,
        root_fields=frozenset(fields),
        name=operation.name.value if operation.name else None,
    )


_NOT_JSON = object()


def _decode_json(body: bytes) -> Any:
    """The decoded body, or _NOT_JSON (not JSON, not UTF-8, or nested too deep)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _NOT_JSON


def _request_payload(decoded: Any) -> Mapping[str, Any] | None:
    if not isinstance(decoded, dict) or not isinstance(decoded.get("query"), str):
        return None
    return decoded


def _declares_json(request: Request) -> bool:
    # The test Strawberry applies to choose its JSON parser.
    return "application/json" in request.headers.get("content-type", "").lower()


def _query_string_payload(request: Request) -> Mapping[str, Any] | None:
    """A GET request's operation (for metrics; GET never runs a mutation)."""
    query = request.query_params.get("query") if request.method == "GET" else None
    if not query:
        return None
    return {"query": query, "operationName": request.query_params.get("operationName")}


def _metric_operation_name(name: object) -> str:
    if not isinstance(name, str) or not _OPERATION_NAME.match(name):
        return "anonymous"
    if name not in _seen_operations:
        if len(_seen_operations) >= _MAX_METRIC_OPERATIONS:
            return "other"
        _seen_operations.add(name)
    return name


def _redact_secrets(value: Any) -> Any:
    """The value with every API-token secret in it replaced by None (aliases
    included: secrets are recognised by their form, not by their field name)."""
    if isinstance(value, dict):
        return {key: _redact_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact_secrets(item) for item in value]
    if isinstance(value, str) and _API_TOKEN_SECRET.match(value):
        return None
    return value


def _replayable_body(body: bytes) -> str | None:
    """What to store for replays of this response, or None to store nothing.

    Nothing when an unexpected error left every root field null: the mutation
    raised, its transaction rolled back, and a retry must run it again.
    """
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", errors="replace")
    if not isinstance(decoded, dict):
        return body.decode("utf-8", errors="replace")
    errors = decoded.get("errors") or []
    data = decoded.get("data")
    failed = any(
        isinstance(error, dict)
        and (error.get("extensions") or {}).get("code") == INTERNAL_ERROR_CODE
        for error in errors
    )
    produced = isinstance(data, dict) and any(value is not None for value in data.values())
    if failed and not produced:
        return None
    redacted = _redact_secrets(decoded)
    if redacted == decoded:
        return body.decode("utf-8")
    return json.dumps(redacted, separators=(",", ":"), ensure_ascii=False)


def _payload_error_codes(data: object) -> Iterator[str]:
    if not isinstance(data, dict):
        return
    for value in data.values():
        if isinstance(value, dict):
            for error in value.get("errors") or ():
                if isinstance(error, dict) and isinstance(error.get("code"), str):
                    yield error["code"]


_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_REFUSAL = "The request holds an unpaired UTF-16 surrogate escape: it is not text."


def _has_lone_surrogate(value: object) -> bool:
    """True when a string in `value` holds a surrogate code point. json.loads
    joins a valid escaped pair into one character, so any left is unpaired."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_lone_surrogate(item) for item in value)
    return False


class GraphQLView(GraphQL[RequestContext, None]):
    def __init__(self, *, clock: Clock, introspection: bool, graphiql: bool) -> None:
        super().__init__(
            build_schema(extensions=schema_extensions(introspection=introspection)),
            graphql_ide="graphiql" if graphiql else None,
        )
        self.clock = clock

    async def parse_http_body(self, request: Any) -> Any:
        """The request's operation(s); an unpaired UTF-16 surrogate anywhere in it
        (JSON allows the escape "\\ud800") is refused: it is not text, and
        would fail later in a password hash or a database driver (a 500)."""
        data = await super().parse_http_body(request)
        for item in data if isinstance(data, list) else [data]:
            parts = (item.query, item.variables, item.operation_name, item.extensions)
            if _has_lone_surrogate(parts):
                raise HTTPException(400, _SURROGATE_REFUSAL)
        return data

    async def get_context(self, request: Any, response: Any) -> RequestContext:
        return RequestContext(
            request=request,
            response=response,
            principal=request.scope.get(PRINCIPAL_KEY),
            clock=self.clock,
            request_id=request_id_var.get() or "",
            client_address=request.client.host if request.client else None,
        )

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        for error in result.errors or ():
            code = (error.extensions or {}).get("code", "GRAPHQL_VALIDATION")
            if code == ErrorCode.SERVICE_UNAVAILABLE.value:
                request.scope[UNAVAILABLE_KEY] = True
            metrics.GRAPHQL_ERRORS.labels(code=str(code), kind="top_level").inc()
        for code in _payload_error_codes(result.data):
            metrics.GRAPHQL_ERRORS.labels(code=code, kind="payload").inc()
        return await super().process_result(request, result)


class GraphQLEndpoint:
    """ASGI endpoint in front of Strawberry's view."""

    def __init__(self, view: GraphQLView, *, clock: Clock) -> None:
        self.view = view
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        started = time.perf_counter()
        body = await request.body() if request.method == "POST" else b""
        if request.method == "POST" and _declares_json(request):
            decoded = _decode_json(body)
            if not isinstance(decoded, dict):
                # Strawberry answers some of these (a JSON string or null, a
                # body nested too deep, UTF-16) with an exception: a 500.
                await http_refusal(
                    400, "The request body must be a JSON object: {query, variables, ...}."
                )(scope, receive, send)
                return
            if _has_lone_surrogate(decoded):
                # Refused before the idempotency fingerprint (UTF-8) is taken.
                await http_refusal(400, _SURROGATE_REFUSAL)(scope, receive, send)
                return
            payload = _request_payload(decoded)
        elif request.method == "POST":
            payload = _request_payload(_decode_json(body))
        else:
            payload = _query_string_payload(request)
        principal = await self._authenticate(request)
        scope[PRINCIPAL_KEY] = principal
        # An operationName that is not a string (a list, an object) names no
        # operation, and could not be a key of _operation_of's cache (a 500).
        operation_name = payload.get("operationName") if payload else None
        operation = (
            _operation_of(payload["query"], operation_name)
            if payload and isinstance(operation_name, str | None)
            else None
        )
        operation_type = operation.type if operation else "unknown"
        if payload is not None:
            metric_name = _metric_operation_name(
                payload.get("operationName") or (operation.name if operation else None)
            )
            scope[OPERATION_KEY] = metric_name
            metrics.GRAPHQL_REQUESTS.labels(
                operation=metric_name, operation_type=operation_type
            ).inc()

        key = request.headers.get("idempotency-key")
        if (
            key is not None
            and request.method == "POST"
            and principal is not None
            and payload is not None
            and operation is not None
            and operation.type == OperationType.MUTATION.value
            # login and acceptInvitation ignore the header, also beside another
            # mutation: a session token is never stored for replays.
            and not operation.root_fields & PUBLIC_MUTATIONS
            # Variables that are not an object: Strawberry refuses the request
            # (400) without running it, so there is nothing to claim (and the
            # fingerprint could not be computed: a 500).
            and isinstance(payload.get("variables"), dict | None)
        ):
            response = await self._run_idempotently(scope, body, payload, principal, key)
        else:
            response = await self._run(scope, body)
        metrics.GRAPHQL_LATENCY.labels(operation_type=operation_type).observe(
            time.perf_counter() - started
        )
        await response(scope, receive, send)

    async def _authenticate(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, bearer = header.partition(" ")
        if scheme.lower() != "bearer" or not bearer.strip():
            return None
        try:
            return await auth.authenticate(bearer=bearer.strip(), clock=self.clock)
        except DomainError:
            return None

    async def _run(self, scope: Scope, body: bytes) -> Response:
        sent = False

        async def replay_body() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            response = await self.view.run(Request(scope, replay_body))
        except HTTPException as refusal:
            # Strawberry's own ASGI entry point turns these into responses; we
            # call its `run` directly, so we must too (else: a 500).
            return http_refusal(refusal.status_code, refusal.reason)
        if scope.get(UNAVAILABLE_KEY):
            return unavailable_response(request_id_var.get() or "-")
        return response

    async def _run_idempotently(
        self,
        scope: Scope,
        body: bytes,
        payload: Mapping[str, Any],
        principal: Principal,
        key: str,
    ) -> Response:
        try:
            idempotency.validate_key(key)
            fingerprint = idempotency.request_fingerprint(
                payload["query"], payload.get("variables"), payload.get("operationName")
            )
            claim = await self._claim(principal, key, fingerprint)
        except DomainError as refusal:
            return top_level_error(refusal.code, refusal.message)
        if claim.replay_body is not None:
            metrics.IDEMPOTENT_REPLAYS.inc()
            return Response(
                claim.replay_body,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        try:
            response = await self._run(scope, body)
        except BaseException:
            await idempotency.abandon(claim=claim)
            raise
        stored = _replayable_body(bytes(response.body)) if response.status_code == 200 else None
        if stored is not None:
            await idempotency.complete(claim=claim, response_body=stored, clock=self.clock)
        else:
            await idempotency.abandon(claim=claim)
        return response

    async def _claim(self, principal: Principal, key: str, fingerprint: str) -> idempotency.Claim:
        deadline = time.monotonic() + IN_USE_WAIT_SECONDS
        while True:
            try:
                return await idempotency.claim(
                    actor=principal, key=key, fingerprint=fingerprint, clock=self.clock
                )
            except DomainError as refusal:
                if refusal.code != ErrorCode.IDEMPOTENCY_KEY_IN_USE or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)
