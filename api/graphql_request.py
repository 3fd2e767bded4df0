"""What a GraphQL request asks, read before it runs: its body, its operation,
its refusals (HTTP-level errors shaped as GraphQL errors)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import parse
from graphql.error import GraphQLSyntaxError
from graphql.utilities import get_operation_ast
from starlette.requests import Request
from starlette.responses import JSONResponse

from api import metrics
from api.graphql_schema import MAX_TOKENS
from domain.errors import ErrorCode
from schema.authentication import root_field_names

_OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MAX_METRIC_OPERATIONS = 200
_seen_operations: set[str] = set()


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


@dataclass(frozen=True)
class Operation:
    type: str
    # Root fields, through fragments too (aliases do not hide them).
    root_fields: frozenset[str]
    name: str | None


@lru_cache(maxsize=512)
def operation_of(query: str, operation_name: object) -> Operation | None:
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


def decode_json(body: bytes) -> Any:
    """The decoded body, or _NOT_JSON (not JSON, not UTF-8, or nested too deep)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _NOT_JSON


def request_payload(decoded: Any) -> Mapping[str, Any] | None:
    if not isinstance(decoded, dict) or not isinstance(decoded.get("query"), str):
        return None
    return decoded


def declares_json(request: Request) -> bool:
    # The test Strawberry applies to choose its JSON parser.
    return "application/json" in request.headers.get("content-type", "").lower()


def query_string_payload(request: Request) -> Mapping[str, Any] | None:
    """A GET request's operation (for metrics; GET never runs a mutation)."""
    query = request.query_params.get("query") if request.method == "GET" else None
    if not query:
        return None
    return {"query": query, "operationName": request.query_params.get("operationName")}


def metric_operation_name(name: object) -> str:
    if not isinstance(name, str) or not _OPERATION_NAME.match(name):
        return "anonymous"
    if name not in _seen_operations:
        if len(_seen_operations) >= _MAX_METRIC_OPERATIONS:
            return "other"
        _seen_operations.add(name)
    return name


def payload_error_codes(data: object) -> Iterator[str]:
    if not isinstance(data, dict):
        return
    for value in data.values():
        if isinstance(value, dict):
            for error in value.get("errors") or ():
                if isinstance(error, dict) and isinstance(error.get("code"), str):
                    yield error["code"]


_SURROGATE = re.compile("[\ud800-\udfff]")
SURROGATE_REFUSAL = "The request holds an unpaired UTF-16 surrogate escape: it is not text."


def has_lone_surrogate(value: object) -> bool:
    """True when a string in `value` holds a surrogate code point. json.loads
    joins a valid escaped pair into one character, so any left is unpaired."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_lone_surrogate(item) for item in value)
    return False
