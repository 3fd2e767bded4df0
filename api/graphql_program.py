"""A selection set's steps compiled into one Python function.

A users page runs the same program a hundred times, 13 leaves each. Looping
over the steps and dispatching on their kind costs, per leaf, several calls
and attribute reads that say the same thing every time, so each program is
written once as the source of a function, straight-line, one block per
response key, and compiled with `compile`/`exec`:

- a leaf reads its attribute directly (`source.email`) when the field's
  resolver is the schema's default one (`getattr`, or `resolve_attribute`,
  whose HIDDEN answer is no plain value either way), else calls the step's
  resolver or root resolver;
- the common answers are written inline: a value of a class the leaf writes
  unchanged, an enum member already written once, a value of another plain
  class through the scalar's coercion, None where null is allowed, and an
  object of its type's own class through its sub-program;
- everything else goes to the executor's step methods (`leaf_step`,
  `object_step`, `standard_step`), which do what the step loop did, and hand
  the field to graphql-core whenever its value is not plain.

Nothing of the document reaches the source as code: response keys and
attribute names enter it as string literals (`repr`) or as identifiers
checked with `str.isidentifier`; steps, resolvers and enum memos are names
bound in the function's namespace.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql.pyutils import Path, Undefined
from graphql.pyutils.gather_with_cancel import gather_with_cancel

from api.graphql_steps import (
    LEAF,
    LEAF_LIST,
    NOT_PLAIN,
    OBJECT,
    OBJECT_LIST,
    PLAIN_CLASSES,
    TYPENAME,
    Step,
    new_path,
)
from schema.hidden import resolve_attribute

if TYPE_CHECKING:
    from graphql import GraphQLObjectType

# (executor, parent type, source, path) -> the results dict, or an awaitable of it.
RunProgram = Callable[[Any, "GraphQLObjectType", Any, "Path | None"], Any]


@dataclass(frozen=True, slots=True)
class Program:
    run: RunProgram
    # The generated function's text, for reading in a debugger or a test.
    source: str


def compile_program(steps: tuple[Step, ...], parent_type: GraphQLObjectType) -> Program:
    namespace: dict[str, Any] = {"NOT_PLAIN": NOT_PLAIN, "gather_fields": _gather_fields}
    lines = [
        "def run(ex, parent_type, source, path):",
        "    results = {}",
        "    pending = []",
        "    try:",
    ]
    for index, step in enumerate(steps):
        namespace[f"S{index}"] = step
        lines.extend("        " + line for line in _block(index, step, parent_type, namespace))
    if not steps:
        lines.append("        pass")
    lines += [
        "    except Exception:",
        "        if pending:",
        "            ex.settle_in_background([results[name] for name in pending])",
        "        raise",
        "    if pending:",
        "        return gather_fields(results, pending)",
        "    return results",
    ]
    text = "\n".join(lines) + "\n"
    exec(compile(text, f"<program of {parent_type.name}>", "exec"), namespace)  # noqa: S102
    run: RunProgram = namespace["run"]
    return Program(run=run, source=text)


def _block(
    index: int, step: Step, parent_type: GraphQLObjectType, namespace: dict[str, Any]
) -> list[str]:
    key = repr(step.response_name)
    call = f"(S{index}, parent_type, source, path, results=results, pending=pending)"
    if step.kind == TYPENAME:
        return [f"results[{key}] = {parent_type.name!r}"]
    if step.kind in (OBJECT, OBJECT_LIST):
        return _object_block(index, step, parent_type, namespace, call)
    if step.kind == LEAF_LIST:
        return [*_read_block(index, step, namespace), f"ex.leaf_list_step{call[:-1]}, value=value)"]
    if step.kind != LEAF or step.leaf is None:
        return [f"ex.standard_step{call}"]
    lines = _read_block(index, step, namespace)
    tests = []
    leaf = step.leaf
    if leaf.identity:
        classes = sorted(leaf.identity, key=lambda cls: cls.__name__)
        for number, cls in enumerate(classes):
            namespace[f"C{index}_{number}"] = cls
        tests.append(
            (
                " or ".join(f"value.__class__ is C{index}_{n}" for n in range(len(classes))),
                "value",
            )
        )
    if leaf.enum_class is not None:
        namespace[f"E{index}"], namespace[f"M{index}"] = leaf.enum_class, leaf.memo
        tests.append(
            (
                f"value.__class__ is E{index} and (written := M{index}.get(value)) is not None",
                "written",
            )
        )
    if not leaf.identity and leaf.enum_class is None:
        # Any other scalar (DateTime, Int, ...): its coercion, for the classes
        # that plain_value coerces, and only a value that it wrote plainly.
        namespace[f"W{index}"], namespace["PLAIN"] = leaf.coerce, PLAIN_CLASSES
        namespace["Undefined"] = Undefined
        lines += [
            "try:",
            f"    written = W{index}(value) if value.__class__ in PLAIN else NOT_PLAIN",
            "except Exception:",
            "    written = NOT_PLAIN",
        ]
        tests.append(
            (
                "written is not NOT_PLAIN and written is not None and written is not Undefined",
                "written",
            )
        )
    if not step.non_null:
        tests.append(("value is None", "None"))
    for number, (test, stored) in enumerate(tests):
        lines += [f"{'if' if number == 0 else 'elif'} {test}:", f"    results[{key}] = {stored}"]
    out_of_line = f"ex.leaf_step{call[:-1]}, value=value)"
    lines += ["else:", f"    {out_of_line}"] if tests else [out_of_line]
    return lines


def _object_block(
    index: int, step: Step, parent_type: GraphQLObjectType, namespace: dict[str, Any], call: str
) -> list[str]:
    """An object behind a plain attribute: when the value is an instance of the
    object type's class and the sub-program exists (it does once the step has
    run), its sub-program runs inline, with graphql-core's handling of an
    error at this field; anything else goes to `object_step`."""
    key = repr(step.response_name)
    lines = _read_block(index, step, namespace)
    out_of_line = f"ex.object_step{call[:-1]}, value=value)"
    if step.kind != OBJECT or step.object_class is None:
        return [*lines, out_of_line]
    namespace[f"OC{index}"], namespace["Path"] = step.object_class, Path
    namespace["new_path"] = new_path
    s = f"S{index}"
    where = f"{s}.return_type, {s}.field_details, field_path"
    lines += [
        f"if value.__class__ is OC{index} and {s}.sub_program is not None:",
        f"    field_path = new_path(Path, (path, {key}, {parent_type.name!r}))",
        "    try:",
        f"        result = {s}.sub_program.run(ex, {s}.object_type, value, field_path)",
        "    except Exception as raw_error:",
        f"        ex.handle_field_error(raw_error, {where})",
        "        result = None",
        "    if result.__class__ is dict or result is None:",
        f"        results[{key}] = result",
        "    else:",
        f"        results[{key}] = ex.await_field(result, {where})",
        f"        pending.append({key})",
    ]
    if not step.non_null:
        lines += ["elif value is None:", f"    results[{key}] = None"]
    return [*lines, "else:", f"    {out_of_line}"]


def _read_block(index: int, step: Step, namespace: dict[str, Any]) -> list[str]:
    """`value` = the step's value read from `source`, NOT_PLAIN if reading raised."""
    read = _read(index, step, namespace)
    return ["try:", f"    value = {read}", "except Exception:", "    value = NOT_PLAIN"]


def _read(index: int, step: Step, namespace: dict[str, Any]) -> str:
    """The expression that reads the step's value from `source`."""
    name = step.attribute
    if step.root_resolver is not None:
        namespace[f"R{index}"] = step.root_resolver
        return f"R{index}(source)"
    direct = step.resolve is getattr or step.resolve is resolve_attribute
    if direct and name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("__"):
        return f"source.{name}"
    namespace[f"R{index}"] = step.resolve
    return f"R{index}(source, {name!r})"


async def _gather_fields(results: dict[str, Any], pending: list[str]) -> dict[str, Any]:
    if len(pending) == 1:
        field = pending[0]
        results[field] = await results[field]
    else:
        awaited = await gather_with_cancel(*(results[field] for field in pending))
        results.update(zip(pending, awaited, strict=True))
    return results
