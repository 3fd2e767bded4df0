"""The GraphQL endpoint: authentication, idempotency keys, metrics, the view.

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
import time
from collections.abc import Mapping
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import OperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from api import idempotency, metrics
from api.bearer import bearer_principal
from api.failures import unavailable_response
from api.graphql_executor import PlanExecutor
from api.graphql_request import (
    SURROGATE_REFUSAL,
    declares_json,
    decode_json,
    has_lone_surrogate,
    http_refusal,
    metric_operation_name,
    operation_of,
    payload_error_codes,
    query_string_payload,
    request_payload,
    top_level_error,
)
from api.graphql_schema import schema_extensions
from api.logs import request_id_var
from api.middleware import OPERATION_KEY, PRINCIPAL_KEY
from domain.clock import Clock
from domain.errors import DomainError, ErrorCode
from domain.principal import Principal
from schema import build_schema
from schema.context import RequestContext

PUBLIC_MUTATIONS = frozenset({"login", "acceptInvitation"})
# A request arriving while the first with its key still runs waits this long
# for the stored response before being told IDEMPOTENCY_KEY_IN_USE.
IN_USE_WAIT_SECONDS = 5.0
# Set in the scope when a resolver met a dependency that is down: the whole
# response becomes SPEC section 6's 503 (a partial answer would hide it).
UNAVAILABLE_KEY = "licenses.unavailable"


class GraphQLView(GraphQL[RequestContext, None]):
    def __init__(
        self, *, clock: Clock, introspection: bool, graphiql: bool, compiled_plan: bool = True
    ) -> None:
        super().__init__(
            build_schema(
                extensions=schema_extensions(introspection=introspection),
                execution_context_class=PlanExecutor if compiled_plan else None,
            ),
            graphql_ide="graphiql" if graphiql else None,
        )
        self.clock = clock

    def encode_json(self, data: object) -> bytes:
        # orjson: a users page of 100 encodes in ~40 µs instead of ~700 µs
        # (docs/benchmarks.md, "Read path"). Compact like json.dumps with
        # separators, but non-ASCII characters go out as UTF-8, not \u escapes.
        return orjson.dumps(data)

    async def parse_http_body(self, request: Any) -> Any:
        """The request's operation(s); an unpaired UTF-16 surrogate anywhere in it
        (JSON allows the escape "\\ud800") is refused: it is not text, and
        would fail later in a password hash or a database driver (a 500)."""
        data = await super().parse_http_body(request)
        for item in data if isinstance(data, list) else [data]:
            parts = (item.query, item.variables, item.operation_name, item.extensions)
            if has_lone_surrogate(parts):
                raise HTTPException(400, SURROGATE_REFUSAL)
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
        for code in payload_error_codes(result.data):
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
        if request.method == "POST" and declares_json(request):
            decoded = decode_json(body)
            if not isinstance(decoded, dict):
                # Strawberry answers some of these (a JSON string or null, a
                # body nested too deep, UTF-16) with an exception: a 500.
                await http_refusal(
                    400, "The request body must be a JSON object: {query, variables, ...}."
                )(scope, receive, send)
                return
            if has_lone_surrogate(decoded):
                # Refused before the idempotency fingerprint (UTF-8) is taken.
                await http_refusal(400, SURROGATE_REFUSAL)(scope, receive, send)
                return
            payload = request_payload(decoded)
        elif request.method == "POST":
            payload = request_payload(decode_json(body))
        else:
            payload = query_string_payload(request)
        principal = await self._authenticate(request)
        scope[PRINCIPAL_KEY] = principal
        # An operationName that is not a string (a list, an object) names no
        # operation, and could not be a key of operation_of's cache (a 500).
        operation_name = payload.get("operationName") if payload else None
        operation = (
            operation_of(payload["query"], operation_name)
            if payload and isinstance(operation_name, str | None)
            else None
        )
        operation_type = operation.type if operation else "unknown"
        if payload is not None:
            metric_name = metric_operation_name(
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
        return await bearer_principal(request, clock=self.clock)

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
        stored = (
            idempotency.replayable_body(bytes(response.body))
            if response.status_code == 200
            else None
        )
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
