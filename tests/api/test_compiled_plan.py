"""Each feature of the compiled execution plan (api.graphql_plan, api.graphql_executor),
on a small schema of its own: the answer is the expected one, and the same as
graphql-core's own executor gives for the same request.

The schema resolves plain attributes with the served schema's default resolver
(`schema.hidden.resolve_attribute`), so HIDDEN answers FORBIDDEN here too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig

from api.graphql_cache import DocumentCache
from api.graphql_executor import PlanExecutor
from api.graphql_plan import plan_count
from schema.fields import NotFromRoot, from_root
from schema.hidden import HIDDEN
from schema.scalars import SCALARS

pytestmark = pytest.mark.anyio

WHEN = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@strawberry.enum
class Colour(Enum):
    RED = "red"
    GREEN = "green"


# The names whose badge the resolver (not the root resolver) gave.
BADGE_RESOLVER_CALLS: list[str] = []


def _badge_from_root(root: Any) -> str:
    if root.name == "bob":
        raise NotFromRoot
    return f"{root.name}!"


def _badge(root: Any) -> str:
    BADGE_RESOLVER_CALLS.append(root.name)
    return f"{root.name}!"


@strawberry.type
class Item:
    name: str
    count: int
    colour: Colour
    when: datetime | None
    secret: str | None
    required: str
    scores: list[int]
    child: Item | None
    children: list[Item]
    badge: str = strawberry.field(resolver=_badge, metadata=from_root(_badge_from_root))

    @strawberry.field
    async def later(self) -> str:
        return self.name.upper()


def item(name: str, **changes: Any) -> Item:
    values: dict[str, Any] = {
        "name": name,
        "count": len(name),
        "colour": Colour.RED,
        "when": WHEN,
        "secret": f"{name}-secret",
        "required": "yes",
        "scores": [1, 2],
        "child": None,
        "children": [],
    }
    values.update(changes)
    return Item(**values)


ITEMS = [
    item("ann", colour=Colour.GREEN, child=item("kid"), children=[item("a1"), item("a2")]),
    item("bob", secret=HIDDEN, when=None),
    item("cy", required=None, scores=[3, RuntimeError("no score")]),
]


class LocalItem(Item):
    """Not the class of Item's definition: the program's inline object path
    does not take it."""


# Values the compiled programs do not write inline.
ODD_ITEMS: list[Item | None] = [
    item("naive", when=datetime(2026, 3, 10, 12, 0)),  # no tzinfo: DateTime refuses it
    item("huge", count=2**40),
    item("sub", child=LocalItem(**vars(item("kid")))),
]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return ITEMS

    @strawberry.field
    def odd(self) -> list[Item | None]:
        return ODD_ITEMS

    @strawberry.field
    def first(self) -> Item:
        return ITEMS[0]


class Shout(SchemaExtension):
    """A resolve hook: every string comes out upper case."""

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        value = _next(root, info, *args, **kwargs)
        return value.upper() if isinstance(value, str) else value


def _schema(executor: type[Any] | None, *extensions: Any) -> strawberry.Schema:
    from schema.hidden import resolve_attribute  # noqa: PLC0415 - the served default resolver

    return strawberry.Schema(
        query=Query,
        extensions=[DocumentCache, *extensions],
        execution_context_class=executor,
        config=StrawberryConfig(scalar_map=SCALARS, default_resolver=resolve_attribute),
    )


COMPILED = _schema(PlanExecutor)
STANDARD = _schema(None)


async def run(query: str, **variables: Any) -> dict[str, Any]:
    """The compiled answer (twice: the second runs the remembered plan), checked
    against the standard one."""
    answers = []
    for schema in (COMPILED, COMPILED, STANDARD):
        result = await schema.execute(query, variable_values=variables)
        answers.append(
            {
                "data": result.data,
                "errors": [
                    {"message": error.message, "path": error.path} for error in result.errors or ()
                ],
            }
        )
    assert answers[0] == answers[1] == answers[2]
    return answers[0]


async def test_plain_leaves_are_written_as_graphql_core_writes_them() -> None:
    answer = await run("{ first { name count colour when } }")

    assert answer == {
        "data": {
            "first": {
                "name": "ann",
                "count": 3,
                "colour": "GREEN",
                "when": "2026-03-10T12:00:00+00:00",
            }
        },
        "errors": [],
    }


async def test_values_not_written_inline_get_graphql_core_s_answer_at_their_field() -> None:
    answer = await run("{ odd { name when child { name } count } }")

    # The naive date-time and the out-of-range Int fail in their scalar's
    # coercion; Int! nulls the whole item, DateTime (nullable) only itself.
    assert answer["data"] == {
        "odd": [
            {"name": "naive", "when": None, "child": None, "count": 5},
            None,
            {
                "name": "sub",
                "when": "2026-03-10T12:00:00+00:00",
                "child": {"name": "kid"},
                "count": 3,
            },
        ]
    }
    assert [error["path"] for error in answer["errors"]] == [
        ["odd", 0, "when"],
        ["odd", 1, "count"],
    ]


async def test_aliases_name_the_keys_in_the_order_asked() -> None:
    answer = await run("{ first { n: name c: count name } }")

    assert answer["data"] == {"first": {"n": "ann", "c": 3, "name": "ann"}}


async def test_fragments_and_inline_fragments_merge_into_one_selection() -> None:
    query = """
        query { first { ...Named ... on Item { count child { ...Named } } } }
        fragment Named on Item { name colour }
    """

    answer = await run(query)

    assert answer["data"] == {
        "first": {
            "name": "ann",
            "colour": "GREEN",
            "count": 3,
            "child": {"name": "kid", "colour": "RED"},
        }
    }


async def test_skip_and_include_follow_the_variables_of_each_request() -> None:
    query = "query ($more: Boolean!) { first { name count @include(if: $more) } }"

    with_count = await run(query, more=True)
    without = await run(query, more=False)

    assert with_count["data"] == {"first": {"name": "ann", "count": 3}}
    assert without["data"] == {"first": {"name": "ann"}}


async def test_lists_of_objects_and_of_leaves_are_completed_item_by_item() -> None:
    answer = await run("{ first { scores children { name scores } } }")

    assert answer["data"] == {
        "first": {
            "scores": [1, 2],
            "children": [{"name": "a1", "scores": [1, 2]}, {"name": "a2", "scores": [1, 2]}],
        }
    }


async def test_nulls_stay_null_where_the_type_allows_them() -> None:
    answer = await run("{ items { name when child { name } } }")

    assert answer["data"] == {
        "items": [
            {"name": "ann", "when": "2026-03-10T12:00:00+00:00", "child": {"name": "kid"}},
            {"name": "bob", "when": None, "child": None},
            {"name": "cy", "when": "2026-03-10T12:00:00+00:00", "child": None},
        ]
    }


async def test_nested_objects_reach_resolvers_below_plain_attributes() -> None:
    answer = await run("{ first { child { name later } children { later } } }")

    assert answer["data"] == {
        "first": {
            "child": {"name": "kid", "later": "KID"},
            "children": [{"later": "A1"}, {"later": "A2"}],
        }
    }


async def test_typename_is_the_parent_type_at_every_level() -> None:
    answer = await run("{ __typename first { __typename t: __typename child { __typename } } }")

    assert answer["data"] == {
        "__typename": "Query",
        "first": {"__typename": "Item", "t": "Item", "child": {"__typename": "Item"}},
    }


async def test_a_hidden_field_is_forbidden_at_its_own_path() -> None:
    answer = await run("{ items { name secret } }")

    assert answer["data"] == {
        "items": [
            {"name": "ann", "secret": "ann-secret"},
            {"name": "bob", "secret": None},
            {"name": "cy", "secret": "cy-secret"},
        ]
    }
    assert answer["errors"] == [
        {
            "message": "A MEMBER sees only the public fields of another user.",
            "path": ["items", 1, "secret"],
        }
    ]


async def test_a_null_in_a_non_null_field_nulls_the_nearest_nullable_parent() -> None:
    answer = await run("{ items { name required } }")

    # `items` is [Item!]!: the error propagates through the item and the list
    # up to the (nullable) data itself.
    assert answer["data"] is None
    assert answer["errors"] == [
        {
            "message": "Cannot return null for non-nullable field Item.required.",
            "path": ["items", 2, "required"],
        }
    ]


async def test_an_error_held_in_a_plain_list_is_raised_at_its_item() -> None:
    answer = await run("{ items { scores } }")

    # scores is [Int!]! and items [Item!]!: the error propagates up to data.
    assert answer["data"] is None
    assert answer["errors"] == [{"message": "no score", "path": ["items", 2, "scores", 1]}]


async def test_errors_below_an_async_resolver_keep_their_paths() -> None:
    answer = await run("{ items { later secret } }")

    assert [item["later"] for item in answer["data"]["items"]] == ["ANN", "BOB", "CY"]
    assert [error["path"] for error in answer["errors"]] == [["items", 1, "secret"]]


async def test_a_resolve_hook_makes_the_whole_request_run_as_graphql_core_runs_it() -> None:
    shouting = _schema(PlanExecutor, Shout)

    result = await shouting.execute("{ first { name colour } }")

    assert result.data == {"first": {"name": "ANN", "colour": "GREEN"}}


async def test_the_plan_of_a_document_is_built_once() -> None:
    query = "{ first { name count } }"
    await COMPILED.execute(query)
    before = plan_count()

    for _ in range(3):
        await COMPILED.execute(query)

    assert plan_count() == before


async def test_a_root_resolver_answers_for_the_resolver_unless_it_cannot() -> None:
    BADGE_RESOLVER_CALLS.clear()
    compiled = await COMPILED.execute("{ items { badge } }")
    by_compiled = list(BADGE_RESOLVER_CALLS)
    BADGE_RESOLVER_CALLS.clear()

    standard = await STANDARD.execute("{ items { badge } }")

    assert (
        compiled.data
        == standard.data
        == {"items": [{"badge": "ann!"}, {"badge": "bob!"}, {"badge": "cy!"}]}
    )
    assert by_compiled == ["bob"]
    assert BADGE_RESOLVER_CALLS == ["ann", "bob", "cy"]
