"""The GraphQL schema of the contract (../shared/contract/schema.graphql).

`schema` is built without the HTTP layer's limits; the HTTP layer calls
`build_schema(extensions=[...])` with its depth/alias/token limits, error
masking and introspection toggle. Authentication (UNAUTHENTICATED for every
field but login and acceptInvitation) is part of every schema built here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.authentication import RequireAuthentication
from schema.context import RequestContext, build_context
from schema.errors import is_public_error
from schema.hidden import resolve_attribute
from schema.mutations import Mutation
from schema.query import Query
from schema.scalars import SCALARS

ExtensionSpec = type[SchemaExtension] | Callable[[], SchemaExtension]


log = logging.getLogger(__name__)


class AppSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log each unexpected error once, with its stack trace and request id.

        Refusals (FORBIDDEN, INVALID_INPUT, UNAUTHENTICATED, validation) are
        answers, not faults: they are not logged. This runs before the HTTP
        layer's masking replaces the error, which therefore logs nothing.
        """
        context = getattr(execution_context, "context", None)
        request_id = getattr(context, "request_id", "") or "-"
        for error in errors:
            if is_public_error(error):
                continue
            log.error(
                "unexpected error in %s (request id %s): %s",
                ".".join(str(part) for part in error.path or ()) or "-",
                request_id,
                error.message,
                exc_info=error.original_error,
            )


def build_schema(
    *,
    extensions: Sequence[ExtensionSpec | Any] = (),
    execution_context_class: type[Any] | None = None,
) -> strawberry.Schema:
    """The schema with the authentication check first, then the given extensions;
    `execution_context_class`: graphql-core's executor to run it (None: Strawberry's)."""
    return AppSchema(
        query=Query,
        mutation=Mutation,
        extensions=[RequireAuthentication, *extensions],
        execution_context_class=execution_context_class,
        config=StrawberryConfig(scalar_map=SCALARS, default_resolver=resolve_attribute),
    )


schema = build_schema()

__all__ = ["RequestContext", "build_context", "build_schema", "schema"]
