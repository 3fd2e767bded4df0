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
    bearer = bearer_token(request)
    if bearer is None:
        return None
    try:
        return await auth.authenticate(bearer=bearer, clock=clock)
    except DomainError:
        return None


def bearer_token(request: HTTPConnection) -> str | None:
    """The token of `Authorization: Bearer …` (scheme case-insensitive); None without one."""
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not bearer.strip():
        return None
    return bearer.strip()
