"""Parse and validate each distinct query text once per process.

Clients send the same few query texts over and over; parsing and validating
one of the size of the Users page costs more than executing it for a page of
users. `DocumentCache` keeps, per process:

- the parsed document of each query text (LRU, `MAX_DOCUMENTS`), parsed with
  the request's parse options (the token limit) exactly as Strawberry would;
- the query texts that passed validation with a given set of rules. Only
  successes are remembered: a document with errors is validated (and
  refused) again each time, so refused documents never take cache room and
  every refusal carries fresh error objects.

The validation rules must be the same classes from one request to the next
for the second part to help (see `api.graphql_http.schema_extensions`).

Persisted documents (api.persisted_queries) are *pinned*: their parse and
their validation are kept outside the LRU, so a burst of ad-hoc queries never
makes a known client's documents be parsed and validated again. The
persisted-query store bounds how many texts are pinned at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache
from typing import Any

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension

MAX_DOCUMENTS = 256


@lru_cache(maxsize=MAX_DOCUMENTS)
def _parse(query: str, **options: Any) -> DocumentNode:
    return parse(query, **options)


_ValidationKey = tuple[str, tuple[type, ...]]
_validated: OrderedDict[_ValidationKey, None] = OrderedDict()
# Pinned query text -> its parsed document (None until first parsed), and the
# pinned texts' successful validations.
_pinned: dict[str, DocumentNode | None] = {}
_pinned_validated: set[_ValidationKey] = set()


def pin(query: str) -> None:
    """Keep this text's parse and validation until `unpin` (persisted documents)."""
    _pinned.setdefault(query, None)


def unpin(query: str) -> None:
    _pinned.pop(query, None)
    for key in [key for key in _pinned_validated if key[0] == query]:
        _pinned_validated.discard(key)


def pinned_count() -> int:
    return len(_pinned)


class DocumentCache(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            query = context.query
            # A syntax error is left to Strawberry's own parsing, which reports it.
            with suppress(GraphQLError, RecursionError):
                if query in _pinned:
                    document = _pinned[query]
                    if document is None:
                        document = _pinned[query] = parse(query, **context.parse_options)
                    context.graphql_document = document
                else:
                    context.graphql_document = _parse(query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        key = (context.query or "", tuple(context.validation_rules))
        hit = context.pre_execution_errors is None and (
            key in _pinned_validated or key in _validated
        )
        if hit:
            # Strawberry validates only when no result is set yet: an empty
            # list is "validated, no errors".
            context.pre_execution_errors = []
            if key in _validated:
                _validated.move_to_end(key)
        yield
        if not hit and context.pre_execution_errors == [] and context.query:
            if context.query in _pinned:
                _pinned_validated.add(key)
                return
            _validated[key] = None
            if len(_validated) > MAX_DOCUMENTS:
                _validated.popitem(last=False)
