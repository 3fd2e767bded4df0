"""Only `login` and `acceptInvitation` run without a principal.

Checked once per operation, before anything executes: an operation that
selects any other root field (through fragments too) while the context has no
principal gets `data: null` and one top-level error with extensions.code
UNAUTHENTICATED. Introspection (`__schema`, `__type`, `__typename`) is left to
the HTTP layer's introspection setting.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from schema.errors import UnauthenticatedError

PUBLIC_ROOT_FIELDS = frozenset({"login", "acceptInvitation", "__typename", "__schema", "__type"})


def root_field_names(document: DocumentNode, operation_name: str | None) -> set[str] | None:
    """Names of the root fields the operation selects; None when there is no such operation."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: set[str] = set()
    seen: set[str] = set()

    def collect(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                collect(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    collect(fragments[name].selection_set)

    collect(operation.selection_set)
    return names


class RequireAuthentication(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        if getattr(context, "principal", None) is None and document is not None:
            names = root_field_names(document, execution.operation_name)
            if names is not None and not names <= PUBLIC_ROOT_FIELDS:
                execution.result = ExecutionResult(data=None, errors=[UnauthenticatedError()])
        yield
