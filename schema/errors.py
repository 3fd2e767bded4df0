"""Top-level GraphQL errors the schema raises on purpose.

Each carries `extensions.code`: FORBIDDEN for a field the viewer's role may
not read, UNAUTHENTICATED without a valid bearer token, or the ErrorCode of a
query refused by the domain (INVALID_INPUT on `first`/`after`, SEAT_LIMIT, ...).
They are GraphQLError subclasses, so masking (which keeps GraphQLError and
DomainError originals) shows them as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from graphql import GraphQLError

from domain.errors import DomainError, ErrorCode


class PublicError(GraphQLError):
    """A deliberate error whose message and code are meant for the client."""

    def __init__(self, code: ErrorCode, message: str, *, field: str | None = None) -> None:
        extensions: dict[str, object] = {"code": code.value}
        if field is not None:
            extensions["field"] = field
        super().__init__(message, extensions=extensions)
        self.code = code


class ForbiddenError(PublicError):
    def __init__(self, message: str = "Reading this needs the ADMIN or OWNER role.") -> None:
        super().__init__(ErrorCode.FORBIDDEN, message)


class UnauthenticatedError(PublicError):
    def __init__(self, message: str = "Sign in: send a valid bearer token.") -> None:
        super().__init__(ErrorCode.UNAUTHENTICATED, message)


class QueryRefusal(PublicError):
    """A read refused by the domain, reported as a top-level error."""

    @classmethod
    def from_domain(cls, error: DomainError) -> QueryRefusal:
        return cls(error.code, error.message, field=error.field)


@contextmanager
def refusals_as_errors() -> Iterator[None]:
    """Turn a DomainError raised by a read into a top-level error with its code."""
    try:
        yield
    except DomainError as error:
        if error.code == ErrorCode.FORBIDDEN:
            raise ForbiddenError(error.message) from error
        raise QueryRefusal.from_domain(error) from error


def is_public_error(error: GraphQLError) -> bool:
    """True for validation errors and the deliberate errors above (never masked)."""
    original = error.original_error
    return original is None or isinstance(original, GraphQLError | DomainError)
