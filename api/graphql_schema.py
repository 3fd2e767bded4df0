"""The schema as the HTTP layer serves it: limits, error masking, introspection.

Limits (SPEC section 3): depth 10, 30 aliases, 5,000 tokens. Masking keeps
validation and domain errors, and replaces anything unexpected by "Internal
server error" with the request id (or SERVICE_UNAVAILABLE when a dependency
is down).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.extensions.disable_introspection import DisableIntrospection

from api.failures import INTERNAL_ERROR_CODE, unavailable_dependency
from api.graphql_cache import DocumentCache
from api.logs import request_id_var
from domain.errors import DomainError, ErrorCode

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 5000
_SUGGESTION = re.compile(r"\s*Did you mean .*\?$", re.S)


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


class ErrorCodes(SchemaExtension):
    """Every error of a response carries extensions.code: a domain error's own
    code (and field), INVALID_INPUT for a request at fault (syntax,
    validation, variables, limits, introspection off).

    Listed before PublicMaskErrors, so it runs after the masking (extensions
    leave on_operation in reverse order) and sees the errors the client gets.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in getattr(result, "errors", None) or ():
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
                error.extensions = {
                    **(error.extensions or {}),
                    "code": ErrorCode.INVALID_INPUT.value,
                }


class HideSuggestions(SchemaExtension):
    """With introspection off, errors do not suggest names ("Did you mean
    'licenses'?"): they would hand out the schema piece by piece."""

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        errors: list[GraphQLError] = [*(context.pre_execution_errors or ())]
        if context.result is not None:
            errors.extend(context.result.errors or ())
        for error in errors:
            error.message = _SUGGESTION.sub("", error.message)


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
        ErrorCodes,
        PublicMaskErrors,
        DocumentCache,
    ]
    if not introspection:
        extensions.extend([DisableIntrospection, HideSuggestions])
    return extensions
