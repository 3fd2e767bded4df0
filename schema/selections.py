"""What a query selects below the current field, to read ahead only what it asks for."""

from __future__ import annotations

from typing import Any

from strawberry.types.nodes import SelectedField

from schema.context import Info


def selects(info: Info, *path: str) -> bool:
    """Whether the query selects this path below the current field, through
    fragments too (@skip and @include are not evaluated: the answer may be yes
    for a field that will be skipped, which costs a needless read only)."""
    level: list[Any] = [part for field in info.selected_fields for part in _children(field)]
    for name in path:
        matched = [selection for selection in _fields(level) if selection.name == name]
        if not matched:
            return False
        level = [part for field in matched for part in field.selections]
    return True


def _fields(selections: list[Any]) -> list[SelectedField]:
    """The fields of a selection set, fragments flattened."""
    fields: list[SelectedField] = []
    pending = list(selections)
    while pending:
        selection = pending.pop()
        if isinstance(selection, SelectedField):
            fields.append(selection)
        else:  # a fragment spread or an inline fragment
            pending.extend(selection.selections)
    return fields


def _children(selection: Any) -> list[Any]:
    return list(selection.selections)
