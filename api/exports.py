"""CSV exports: GET /export/users.csv and GET /export/audit.csv (SPEC section 11).

Bearer authentication exactly as /graphql (api.bearer). A handler unpacks the
query, calls one read of domain/reads/exports.py and streams its batches as
RFC 4180 text (domain/rules/csv_text.py), one chunk per batch; the server
sends the next chunk when the client has taken the last.

Answers before the first byte, JSON `{"errors": [{message, extensions:
{code, requestId}}]}` as the request boundary's own: 401 without a valid
token, 403 for a MEMBER or a token without the GRAPHQL scope, 400 for a bad
parameter. A database that is down or busy escapes to the request boundary:
SPEC section 6's 503 with Retry-After (the first batch is read before the
response starts). A failure after the first byte cannot change the status:
the exception ends the response before the last chunk of its chunked body,
so the client sees an incomplete download, never a shorter file that looks
complete.

Parameters: `bom=true` puts a UTF-8 byte order mark first (for Excel);
`status=INVITED|ENABLED|DISABLED` narrows users.csv. Others are refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from api.bearer import bearer_principal
from api.logs import request_id_var
from api.middleware import PRINCIPAL_KEY
from domain.clock import Clock
from domain.enums import UserStatus
from domain.errors import DomainError, ErrorCode
from domain.principal import Principal
from domain.reads import exports
from domain.rules.csv_text import csv_records
from domain.services.auth import UNAUTHENTICATED_MESSAGE

USERS_PATH = "/export/users.csv"
AUDIT_PATH = "/export/audit.csv"
BOM = "\ufeff"
_STATUS_OF = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.INVALID_INPUT: 400,
}

Read = Callable[["_Query", Principal, Clock, int], Awaitable[exports.Export]]


class _Query:
    """The request's query parameters, each given at most once and all known."""

    def __init__(self, request: Request, known: frozenset[str]) -> None:
        params = request.query_params
        unknown = sorted(set(params.keys()) - known)
        if unknown:
            raise _invalid(unknown[0], f"Unknown parameter {unknown[0]!r}.")
        for name in params:
            if len(params.getlist(name)) > 1:
                raise _invalid(name, f"Give {name!r} once.")
        self.params = params

    def get(self, name: str) -> str | None:
        return self.params.get(name)

    def flag(self, name: str) -> bool:
        raw = self.get(name)
        if raw is None or raw == "false":
            return False
        if raw == "true":
            return True
        raise _invalid(name, f"{name!r} is true or false.")


def _invalid(field: str, message: str) -> DomainError:
    return DomainError(ErrorCode.INVALID_INPUT, message, field=field)


async def _users(query: _Query, actor: Principal, clock: Clock, batch_size: int) -> exports.Export:
    raw = query.get("status")
    try:
        status = UserStatus(raw) if raw is not None else None
    except ValueError:
        raise _invalid("status", "status is INVITED, ENABLED or DISABLED.") from None
    return await exports.export_users(
        actor=actor, clock=clock, status=status, batch_size=batch_size
    )


async def _audit(query: _Query, actor: Principal, clock: Clock, batch_size: int) -> exports.Export:
    return await exports.export_audit_events(actor=actor, clock=clock, batch_size=batch_size)


def refusal(error: DomainError) -> JSONResponse:
    """The one mapping of a refusal to its answer on these endpoints."""
    status = _STATUS_OF.get(error.code, 400)
    body = {
        "errors": [
            {
                "message": error.message,
                "extensions": {"code": error.code.value, "requestId": request_id_var.get() or "-"},
            }
        ]
    }
    headers = {"WWW-Authenticate": 'Bearer realm="licenses"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _chunks(export: exports.Export, *, bom: bool) -> AsyncIterator[bytes]:
    yield ((BOM if bom else "") + csv_records([export.header])).encode("utf-8")
    async for batch in export.batches:
        yield csv_records(batch).encode("utf-8")


async def _no_body() -> AsyncIterator[bytes]:
    nothing: tuple[bytes, ...] = ()
    for chunk in nothing:
        yield chunk


def _endpoint(
    read: Read, known: frozenset[str], clock: Clock, batch_size: int
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        principal = await bearer_principal(request, clock=clock)
        request.scope[PRINCIPAL_KEY] = principal
        try:
            if principal is None:
                raise DomainError(ErrorCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
            query = _Query(request, known)
            bom = query.flag("bom")
            export = await read(query, principal, clock, batch_size)
        except DomainError as error:
            return refusal(error)
        headers = {"Content-Disposition": f'attachment; filename="{export.filename}"'}
        if request.method == "HEAD":
            # The headers GET would send, without reading the rows.
            await export.batches.aclose()
            return StreamingResponse(_no_body(), headers=headers, media_type="text/csv")
        return StreamingResponse(_chunks(export, bom=bom), headers=headers, media_type="text/csv")

    return endpoint


def export_routes(clock: Clock, *, batch_size: int) -> list[Route]:
    users = _endpoint(_users, frozenset({"bom", "status"}), clock, batch_size)
    audit = _endpoint(_audit, frozenset({"bom"}), clock, batch_size)
    return [
        Route(USERS_PATH, users, methods=["GET"]),
        Route(AUDIT_PATH, audit, methods=["GET"]),
    ]
