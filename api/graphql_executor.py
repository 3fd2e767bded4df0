"""The executor that runs compiled plans (api.graphql_plan), given to Strawberry
as the schema's `execution_context_class`.

It is Strawberry's own executor with three methods replaced: the root fields
and the collected sub-fields come from the operation's plan (collected once,
not once per request and object), and `execute_fields` runs the selection set's
program (a compiled function, api.graphql_program, which calls the step methods
here for what it does not write inline). A plain field is read and written
without resolve info, path or awaitable check; whatever a step cannot answer
plainly is handed to graphql-core's `execute_field` for that field alone,
before anything of it ran, so errors, nulls and paths are exactly
graphql-core's. Objects and lists reached through plain attributes are
completed here with graphql-core's rules (field errors handled at the field or
the list item, non-null errors propagating, awaitables gathered in the same
order), so the response does not depend on which executor ran it:
`tests/api/test_compiled_plan_differential.py` compares the two byte for byte.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from graphql import GraphQLObjectType, GraphQLOutputType
from graphql.execution.collect_fields import CollectedFields, FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, Undefined
from graphql.pyutils.gather_with_cancel import gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.graphql_plan import Plan, plan_for
from api.graphql_program import Program
from api.graphql_steps import NOT_PLAIN, OBJECT, OBJECT_LIST, Step, new_path, plain_value


class PlanExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plan: Plan | None = plan_for(self)

    def execute_collected_root_fields(
        self,
        root_type: GraphQLObjectType,
        root_value: Any,
        grouped_field_set: GroupedFieldSet,
        serially: bool,
        new_defer_usages: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if self.plan is not None and not new_defer_usages:
            grouped_field_set = self.plan.root_fields(grouped_field_set)
        return super().execute_collected_root_fields(
            root_type, root_value, grouped_field_set, serially, new_defer_usages
        )

    def collect_subfields(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> CollectedFields:
        if self.plan is None:
            return super().collect_subfields(return_type, field_details_list)
        return self.plan.subfields(self, return_type, field_details_list)

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        plan = self.plan
        if plan is None or position_context is not None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        program = plan.program(self, parent_type, grouped_field_set)
        return self.run_program(program, parent_type, source_value, path)

    def run_program(
        self,
        program: Program,
        parent_type: GraphQLObjectType,
        source: Any,
        path: Path | None,
    ) -> AwaitableOrValue[dict[str, Any]]:
        """graphql-core's execute_fields, with the plain steps answered by the
        program's compiled function (api.graphql_program), which calls the
        step methods below for the rest."""
        result: AwaitableOrValue[dict[str, Any]] = program.run(self, parent_type, source, path)
        return result

    def standard_step(
        self,
        step: Step,
        parent_type: GraphQLObjectType,
        source: Any,
        path: Path | None,
        *,
        results: dict[str, Any],
        pending: list[str],
    ) -> None:
        """The field as graphql-core executes it."""
        name = step.response_name
        result = self.execute_field(
            parent_type, source, step.field_details, Path(path, name, parent_type.name), None
        )
        if result is not Undefined:
            results[name] = result
            if self.is_awaitable(result):
                pending.append(name)

    def leaf_step(
        self,
        step: Step,
        parent_type: GraphQLObjectType,
        source: Any,
        path: Path | None,
        *,
        results: dict[str, Any],
        pending: list[str],
        value: Any,
    ) -> None:
        """A leaf whose value (read by the program, or NOT_PLAIN) the program
        did not write inline."""
        assert step.leaf is not None
        if value is not NOT_PLAIN:
            try:
                if value is None:
                    written = NOT_PLAIN if step.non_null else None
                else:
                    written = plain_value(step.leaf, value)
            except Exception:
                written = NOT_PLAIN
            if written is not NOT_PLAIN:
                results[step.response_name] = written
                return
        self.standard_step(step, parent_type, source, path, results=results, pending=pending)

    def leaf_list_step(
        self,
        step: Step,
        parent_type: GraphQLObjectType,
        source: Any,
        path: Path | None,
        *,
        results: dict[str, Any],
        pending: list[str],
        value: Any,
    ) -> None:
        """A list of leaves, its value read by the program (or NOT_PLAIN)."""
        value = NOT_PLAIN if value is NOT_PLAIN else self._leaf_list(step, value)
        if value is NOT_PLAIN:
            self.standard_step(step, parent_type, source, path, results=results, pending=pending)
        else:
            results[step.response_name] = value

    def object_step(
        self,
        step: Step,
        parent_type: GraphQLObjectType,
        source: Any,
        path: Path | None,
        *,
        results: dict[str, Any],
        pending: list[str],
        value: Any,
    ) -> None:
        """An object or a list of objects whose value (read by the program, or
        NOT_PLAIN) the program did not complete inline."""
        result = NOT_PLAIN if value is NOT_PLAIN else self._object(step, parent_type, value, path)
        if result is NOT_PLAIN:
            self.standard_step(step, parent_type, source, path, results=results, pending=pending)
            return
        results[step.response_name] = result
        cls = result.__class__
        if cls is not dict and cls is not list and result is not None and self.is_awaitable(result):
            pending.append(step.response_name)

    @staticmethod
    def _leaf_list(step: Step, value: Any) -> Any:
        assert step.leaf is not None
        try:
            if value is None:
                return NOT_PLAIN if step.non_null else None
            if value.__class__ is not list and value.__class__ is not tuple:
                return NOT_PLAIN
            written: list[Any] = []
            for item in value:
                if item is None:
                    if step.item_non_null:
                        return NOT_PLAIN
                    written.append(None)
                    continue
                item_value = plain_value(step.leaf, item)
                if item_value is NOT_PLAIN:
                    return NOT_PLAIN
                written.append(item_value)
            return written
        except Exception:
            return NOT_PLAIN

    def _object(
        self, step: Step, parent_type: GraphQLObjectType, value: Any, path: Path | None
    ) -> Any:
        """The completed value of an object or a list of objects behind a plain
        attribute: NOT_PLAIN (before anything ran) unless the value is one
        graphql-core would complete without an error of its own."""
        assert step.return_type is not None
        is_awaitable = self.is_awaitable
        # An instance of the object type's own class is neither an error nor
        # an awaitable: the checks below are for anything else.
        object_class = step.object_class
        if value is None or value is Undefined:
            return NOT_PLAIN if step.non_null else None
        if value.__class__ is not object_class and (
            isinstance(value, Exception) or is_awaitable(value)
        ):
            return NOT_PLAIN
        if step.kind == OBJECT_LIST:
            if value.__class__ is not list and value.__class__ is not tuple:
                return NOT_PLAIN
            for item in value:
                if item.__class__ is not object_class and (
                    item is None or isinstance(item, Exception) or is_awaitable(item)
                ):
                    return NOT_PLAIN
        field_path = Path(path, step.response_name, parent_type.name)
        try:
            if step.kind == OBJECT:
                completed: Any = self._complete_object(step, value, field_path)
            else:
                completed = self._complete_list(step, value, field_path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, step.return_type, step.field_details, field_path)
            return None
        if is_awaitable(completed):
            return self.await_field(completed, step.return_type, step.field_details, field_path)
        return completed

    def _sub_program(self, step: Step) -> Program:
        program = step.sub_program
        if program is None:
            assert self.plan is not None
            assert step.object_type is not None and step.sub_fields is not None
            program = step.sub_program = self.plan.program(self, step.object_type, step.sub_fields)
        return program

    def _complete_object(self, step: Step, value: Any, path: Path) -> Any:
        assert step.object_type is not None
        return self._sub_program(step).run(self, step.object_type, value, path)

    def _complete_list(self, step: Step, items: list[Any] | tuple[Any, ...], path: Path) -> Any:
        """graphql-core's complete_iterable_value for plain object items."""
        assert step.object_type is not None and step.item_type is not None
        object_type, item_type = step.object_type, step.item_type
        program = self._sub_program(step)
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        try:
            for index, item in enumerate(items):
                item_path = new_path(Path, (path, index, None))
                try:
                    result = program.run(self, object_type, item, item_path)
                    if result.__class__ is not dict and self.is_awaitable(result):
                        completed.append(
                            self.await_field(result, item_type, step.field_details, item_path)
                        )
                        awaitable_indices.append(index)
                    else:
                        completed.append(result)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, step.field_details, item_path)
                    completed.append(None)
        except Exception:
            if awaitable_indices:
                self.settle_in_background([completed[index] for index in awaitable_indices])
            raise
        if not awaitable_indices:
            return completed
        return _gather_items(completed, awaitable_indices)

    async def await_field(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        path: Path,
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None


async def _gather_items(completed: list[Any], awaitable_indices: list[int]) -> list[Any]:
    if len(awaitable_indices) == 1:
        index = awaitable_indices[0]
        completed[index] = await completed[index]
    else:
        awaited = await gather_with_cancel(*(completed[index] for index in awaitable_indices))
        for index, result in zip(awaitable_indices, awaited, strict=True):
            completed[index] = result
    return completed
