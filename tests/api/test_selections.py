"""schema.selections.selects: what a query selects below a field, on the document's nodes."""

from __future__ import annotations

import pytest
import strawberry

from schema.context import Info
from schema.selections import selects

pytestmark = pytest.mark.anyio


@strawberry.type
class Leafy:
    name: str = "x"
    other: str = "y"


@strawberry.type
class Middle:
    leaf: Leafy = strawberry.field(default_factory=Leafy)
    plain: str = "z"


@strawberry.type
class Query:
    @strawberry.field
    def probe(self, info: Info) -> Middle:
        SEEN.append(selects(info, "leaf", "name"))
        return Middle()


SEEN: list[bool] = []
SCHEMA = strawberry.Schema(query=Query)


async def answer(query: str) -> bool:
    SEEN.clear()
    result = await SCHEMA.execute(query)
    assert result.errors is None
    return SEEN[0]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ probe { leaf { name } } }", True),
        ("{ probe { renamed: leaf { called: name } } }", True),
        ("{ probe { ... on Middle { leaf { ... on Leafy { name } } } } }", True),
        (
            "{ probe { ...M } } "
            "fragment M on Middle { leaf { ...L } } fragment L on Leafy { name }",
            True,
        ),
        ("{ probe { leaf { other } } }", False),
        ("{ probe { plain } }", False),
        ("{ probe { leaf { other } leaf { name } } }", True),
    ],
)
async def test_selects_follows_aliases_and_fragments_down_the_path(
    query: str, expected: bool
) -> None:
    assert await answer(query) is expected
