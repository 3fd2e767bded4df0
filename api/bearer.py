"""The bearer token of a request, read the same way by every endpoint that takes one."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from domain.clock import Clock
from domain.errors import DomainError
from domain.principal import Principal
from domain.services import auth


async def bearer_principal(request: HTTPConnection, *, clock: Clock) -> Principal | None:
    """The principal behind `Authorization: Bearer …`; None without a valid token.

    A database that is down is not "no token": its exception goes on to the
    failure answers (SPEC section 6).
    """
    header = request.headers.get("authorization", "")
    scheme, _, bearer = header.partition(" ")
    if scheme.lower() != "bearer" or not bearer.strip():
        return None
    try:
        return await auth.authenticate(bearer=bearer.strip(), clock=clock)
    except DomainError:
        return None
