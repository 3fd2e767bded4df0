"""Compiled execution plans: what each selection set of a document does, worked out once.

graphql-core executes a field by building its resolve info, calling its
resolver, checking whether the result is awaitable and completing the value
through the chain NonNull -> List -> leaf/object, field after field. For a
plain attribute (a Strawberry field without a resolver) most of that is the
same answer every time. A `Plan` holds, per operation of a parsed document
(and per value of the variables its @skip/@include read), the collected field
sets of every selection set and, for each of them, a `Program`: one `Step` per
response key saying how to produce it:

- LEAF, LEAF_LIST: the schema's default resolver (the attribute), then the
  scalar's or enum's own output coercion, skipped for the value classes it
  returns unchanged and remembered per enum member;
- OBJECT, OBJECT_LIST: the attribute, then the sub-program on the value;
  a field with a resolver counts as an attribute when it names a root
  resolver (`schema.fields.ROOT_RESOLVER`): a function of the parent object
  that answers from what the object holds, or raises and the field is handed
  to graphql-core (whose resolver then runs);
- TYPENAME: the parent type's name;
- STANDARD: anything else (resolver methods, arguments, introspection,
  abstract types, types with `is_type_of`): graphql-core's own `execute_field`.

Each program is compiled into one Python function (`api.graphql_program`)
the first time its selection set runs. The executor (`api.graphql_executor`)
runs the programs, and hands a field back to graphql-core whenever its value
is anything but plain (an error, HIDDEN, null where the type forbids it, an
awaitable, an unexpected class), so that the response, its errors and their
paths are graphql-core's.

Plans are kept per operation node in an LRU of `MAX_PLANS`, for the last
`MAX_SCHEMAS` schemas: the document cache (`api.graphql_cache`) hands the
same parsed document to every request with the same text, so its operation
node is the key.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
)
from graphql.execution.collect_fields import (
    CollectedFields,
    FieldDetailsList,
    GroupedFieldSet,
    collect_subfields,
)

from api.graphql_program import Program, compile_program
from api.graphql_steps import (
    LEAF,
    LEAF_LIST,
    OBJECT,
    OBJECT_LIST,
    STANDARD,
    TYPENAME,
    Leaf,
    Step,
    leaf_of,
)
from schema.fields import ROOT_RESOLVER

if TYPE_CHECKING:
    from graphql.execution import Executor

MAX_PLANS = 512
MAX_SCHEMAS = 4
# Plans per operation, by the values of the variables its @skip/@include read.
MAX_VARIANTS = 16
# A safety bound: a plan only ever sees the selection sets of its document.
_MAX_ENTRIES = 4096
_BACKREF = "strawberry-definition"
_DIRECTIVES = frozenset({"skip", "include"})


def _unwrap(type_: GraphQLOutputType) -> tuple[bool, GraphQLOutputType]:
    if isinstance(type_, GraphQLNonNull):
        return True, type_.of_type
    return False, type_


class Plan:
    """The collected field sets and programs of one operation (see the module docstring)."""

    def __init__(self) -> None:
        self._root: GroupedFieldSet | None = None
        self._subfields: dict[tuple[int, int], tuple[FieldDetailsList, CollectedFields]] = {}
        self._programs: dict[tuple[int, int], tuple[GroupedFieldSet, Program]] = {}
        self._leaves: dict[int, Leaf] = {}

    def root_fields(self, grouped_field_set: GroupedFieldSet) -> GroupedFieldSet:
        # The first request's root fields stand for every later one: their
        # field lists are then the same objects, which keys what follows.
        if self._root is None:
            self._root = grouped_field_set
        return self._root

    def subfields(
        self, executor: Executor[Any], return_type: GraphQLObjectType, fields: FieldDetailsList
    ) -> CollectedFields:
        key = (id(return_type), id(fields))
        found = self._subfields.get(key)
        if found is not None:
            return found[1]
        collected = collect_subfields(
            executor.schema,
            executor.fragments,
            executor.variable_values,
            executor.operation,
            return_type,
            fields,
            executor.hide_suggestions,
        )
        if len(self._subfields) < _MAX_ENTRIES:
            # Kept with the list, so that its id is not reused while cached.
            self._subfields[key] = (fields, collected)
        return collected

    def program(
        self,
        executor: Executor[Any],
        parent_type: GraphQLObjectType,
        grouped_field_set: GroupedFieldSet,
    ) -> Program:
        key = (id(parent_type), id(grouped_field_set))
        found = self._programs.get(key)
        if found is not None:
            return found[1]
        steps = tuple(
            self._step(executor, parent_type, name, fields)
            for name, fields in grouped_field_set.items()
        )
        program = compile_program(steps, parent_type)
        if len(self._programs) < _MAX_ENTRIES:
            self._programs[key] = (grouped_field_set, program)
        return program

    def _leaf(self, named: GraphQLScalarType | GraphQLEnumType) -> Leaf:
        leaf = self._leaves.get(id(named))
        if leaf is None:
            leaf = self._leaves[id(named)] = leaf_of(named)
        return leaf

    def _step(
        self,
        executor: Executor[Any],
        parent_type: GraphQLObjectType,
        response_name: str,
        fields: FieldDetailsList,
    ) -> Step:
        standard = Step(STANDARD, response_name, fields)
        node = fields[0].node
        name = node.name.value
        if any(details.fragment_variable_values is not None for details in fields):
            return standard
        if name == "__typename":
            return Step(TYPENAME, response_name, fields)
        field_def = parent_type.fields.get(name)
        definition = field_def.extensions.get(_BACKREF) if field_def is not None else None
        if field_def is None or definition is None or field_def.args or node.arguments:
            return standard
        resolve, root_resolver = _plain_resolver(field_def.resolve, definition)
        if resolve is None and root_resolver is None:
            return standard
        non_null, inner = _unwrap(field_def.type)
        base = Step(
            STANDARD,
            response_name,
            fields,
            return_type=field_def.type,
            attribute=definition.python_name,
            resolve=resolve,
            root_resolver=root_resolver,
            non_null=non_null,
        )
        if isinstance(inner, GraphQLScalarType | GraphQLEnumType):
            base.kind, base.leaf = LEAF, self._leaf(inner)
            return base
        if isinstance(inner, GraphQLList):
            base.item_type = inner.of_type
            base.item_non_null, inner = _unwrap(inner.of_type)
            if isinstance(inner, GraphQLScalarType | GraphQLEnumType):
                base.kind, base.leaf = LEAF_LIST, self._leaf(inner)
                return base
            base.kind = OBJECT_LIST
        else:
            base.kind = OBJECT
        if not isinstance(inner, GraphQLObjectType) or inner.is_type_of is not None:
            return standard
        collected = self.subfields(executor, inner, fields)
        if collected.new_defer_usages:
            return standard
        base.object_type, base.sub_fields = inner, collected.grouped_field_set
        origin = getattr(inner.extensions.get(_BACKREF), "origin", None)
        base.object_class = origin if isinstance(origin, type) else None
        return base


def _plain_resolver(
    resolve: Any, definition: Any
) -> tuple[Callable[[Any, str], Any] | None, Callable[[Any], Any] | None]:
    """What a plain step reads a field with: (the schema's default resolver,
    None) for a plain attribute; (None, its root resolver) for a field that
    names one and has no extensions (permissions included) that its resolver
    would run; (None, None) for any other field."""
    if getattr(resolve, "_is_default", False):
        default = getattr(definition, "default_resolver", None)
        return (default if callable(default) else None), None
    root_resolver = getattr(definition, "metadata", {}).get(ROOT_RESOLVER)
    if not callable(root_resolver) or getattr(definition, "extensions", None):
        return None, None
    return None, root_resolver


# --------------------------------------------------------------------------
# The plans of the process


@dataclass
class _Operation:
    operation: OperationDefinitionNode
    # None: the document uses a directive the plans do not evaluate.
    directive_variables: tuple[str, ...] | None
    variants: OrderedDict[tuple[Any, ...], Plan] = field(default_factory=OrderedDict)


@dataclass
class _SchemaPlans:
    schema: GraphQLSchema
    operations: OrderedDict[int, _Operation] = field(default_factory=OrderedDict)


# By schema, a few: a process serves one; tests build one per app, and an
# old schema's plans must not stay alive for the rest of the run.
_schemas: OrderedDict[int, _SchemaPlans] = OrderedDict()


def plan_for(executor: Executor[Any]) -> Plan | None:
    """The plan of the executor's operation, None when it must run as graphql-core runs it."""
    middleware = executor.middleware_manager
    operation = executor.operation
    schema = executor.schema
    if (
        (middleware is not None and middleware.middlewares)
        or executor.abort_signal is not None
        or operation.operation == OperationType.SUBSCRIPTION
        or schema.get_directive("defer") is not None
        or any(details.variable_signatures for details in executor.fragments.values())
    ):
        return None
    plans = _schemas.get(id(schema))
    if plans is None or plans.schema is not schema:
        plans = _schemas[id(schema)] = _SchemaPlans(schema)
        while len(_schemas) > MAX_SCHEMAS:
            _schemas.popitem(last=False)
    else:
        _schemas.move_to_end(id(schema))
    operations = plans.operations
    entry = operations.get(id(operation))
    if entry is None or entry.operation is not operation:
        entry = operations[id(operation)] = _Operation(operation, _directive_variables(executor))
        while len(operations) > MAX_PLANS:
            operations.popitem(last=False)
    else:
        operations.move_to_end(id(operation))
    if entry.directive_variables is None:
        return None
    coerced = executor.variable_values.coerced
    values = tuple(coerced.get(name) for name in entry.directive_variables)
    plan = entry.variants.get(values)
    if plan is None:
        plan = entry.variants[values] = Plan()
        while len(entry.variants) > MAX_VARIANTS:
            entry.variants.popitem(last=False)
    return plan


def plan_count() -> int:
    """Operations with plans, over the schemas kept."""
    return sum(len(plans.operations) for plans in _schemas.values())


def _directive_variables(executor: Executor[Any]) -> tuple[str, ...] | None:
    """The variables @skip/@include read in the operation and its fragments;
    None when a selection carries any other directive."""
    names: set[str] = set()
    pending: list[SelectionSetNode] = [executor.operation.selection_set]
    pending.extend(details.definition.selection_set for details in executor.fragments.values())
    while pending:
        selection_set = pending.pop()
        for selection in selection_set.selections:
            for directive in selection.directives or ():
                if directive.name.value not in _DIRECTIVES:
                    return None
                for argument in directive.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        names.add(argument.value.name.value)
            if isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                pending.append(selection.selection_set)
            elif not isinstance(selection, FieldNode | InlineFragmentNode | FragmentSpreadNode):
                return None
    return tuple(sorted(names))
