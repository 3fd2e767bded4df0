"""What a query selects below the current field, to read ahead only what it asks for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionNode,
)

from schema.context import Info


def selects(info: Info, *path: str) -> bool:
    """Whether the query selects this path below the current field, through
    fragments too (@skip and @include are not evaluated: the answer may be yes
    for a field that will be skipped, which costs a needless read only).

    It walks the document's own nodes: `info.selected_fields` would convert
    the whole selection below the field (arguments and directives included)
    into Strawberry's objects first, on every request of a page."""
    raw = info._raw_info  # Strawberry's Info has no public field nodes
    fragments = raw.fragments
    level = _below(raw.field_nodes)
    for name in path:
        matched = [field for field in _fields(level, fragments) if field.name.value == name]
        if not matched:
            return False
        level = _below(matched)
    return True


def _below(fields: Iterable[FieldNode]) -> list[SelectionNode]:
    return [
        selection
        for field in fields
        if field.selection_set is not None
        for selection in field.selection_set.selections
    ]


def _fields(
    selections: list[SelectionNode], fragments: Mapping[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    """The fields of a selection set, fragments flattened."""
    fields: list[FieldNode] = []
    pending = list(selections)
    while pending:
        selection = pending.pop()
        if isinstance(selection, FieldNode):
            fields.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            pending.extend(selection.selection_set.selections)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                pending.extend(fragment.selection_set.selections)
    return fields
