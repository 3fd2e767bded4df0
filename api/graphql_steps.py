"""The steps of a compiled execution plan (api.graphql_plan): what one response
key of a selection set does, and how a leaf type writes a plain value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLString,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Undefined

if TYPE_CHECKING:
    from api.graphql_program import Program

# Classes no scalar's output coercion awaits or raises for by nature: any
# other class (an awaitable, an Exception, HIDDEN) goes to graphql-core.
PLAIN_CLASSES = frozenset({str, int, float, bool, datetime, date})

LEAF, LEAF_LIST, OBJECT, OBJECT_LIST, TYPENAME, STANDARD = range(6)

# new_path(Path, (prev, key, typename)): graphql-core's Path is a named tuple,
# whose own constructor is a Python function; a users page builds three
# hundred of them (an edge, its node, the node's invitation).
new_path = tuple.__new__


@dataclass(slots=True)
class Leaf:
    """How one leaf type writes a value: unchanged for `identity` classes, else
    its coercion (enum members remembered: Strawberry's enum coercion scans the
    members)."""

    coerce: Callable[[Any], Any]
    identity: frozenset[type]
    enum_class: type | None = None
    memo: dict[Any, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Step:
    kind: int
    response_name: str
    field_details: FieldDetailsList
    return_type: GraphQLOutputType | None = None
    attribute: str = ""
    # How a plain step reads its value: the default resolver (source, attribute),
    # or a field's root resolver (schema.fields.ROOT_RESOLVER) of the source.
    resolve: Callable[[Any, str], Any] | None = None
    non_null: bool = False
    item_type: GraphQLOutputType | None = None
    item_non_null: bool = False
    leaf: Leaf | None = None
    object_type: GraphQLObjectType | None = None
    # The Python class of the object type's Strawberry definition.
    object_class: type | None = None
    sub_fields: GroupedFieldSet | None = None
    root_resolver: Callable[[Any], Any] | None = None
    # The sub-fields' program, once first run (the step belongs to one plan).
    sub_program: Program | None = None


def leaf_of(named: GraphQLScalarType | GraphQLEnumType) -> Leaf:
    if named is GraphQLString or named is GraphQLID:
        identity: frozenset[type] = frozenset({str})
    elif named is GraphQLBoolean:
        identity = frozenset({bool})
    else:
        identity = frozenset()
    enum_class = getattr(named, "wrapped_cls", None) if isinstance(named, GraphQLEnumType) else None
    if not (isinstance(enum_class, type) and issubclass(enum_class, Enum)):
        enum_class = None
    return Leaf(coerce=named.coerce_output_value, identity=identity, enum_class=enum_class)


def plain_value(leaf: Leaf, value: Any) -> Any:
    """The value as the leaf's coercion writes it, or NOT_PLAIN."""
    cls = value.__class__
    if cls in leaf.identity:
        return value
    if cls is leaf.enum_class:
        written = leaf.memo.get(value)
        if written is None:
            written = leaf.memo[value] = leaf.coerce(value)
        return written
    if cls not in PLAIN_CLASSES:
        return NOT_PLAIN
    written = leaf.coerce(value)
    return NOT_PLAIN if written is None or written is Undefined else written


class _NotPlain:
    __slots__ = ()


NOT_PLAIN: Any = _NotPlain()
