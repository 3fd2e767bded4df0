"""Pages of the contract: PageInfo, and ONE generic Edge and Connection.

Each list specialises them (`class UserEdge(Edge[User])`) under `@specialised`,
which names the type after the class (UserEdge, UserConnection, ... as the
contract has them) and gives it its own descriptions. Strawberry copies the
descriptions of a generic's fields into every specialisation, and the contract
words them per list ("The user.", "The event."), hence the override.

A connection is generic over its edge type, not its node type: `list[Edge[N]]`
would make Strawberry build an Edge[User] of its own beside UserEdge.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, Self, TypeVar

import strawberry
from strawberry import Private
from strawberry.types.base import get_object_definition

from domain.reads.pages import Edge as PageEdge
from domain.reads.pages import Page
from schema.fields import built, resolver

PAGE_SIZE_DEFAULT = 50
FirstArgument = Annotated[
    int | None, strawberry.argument(description="How many, 1..200 (INVALID_INPUT otherwise).")
]
AfterArgument = Annotated[
    str | None, strawberry.argument(description="The endCursor of the previous page.")
]

N = TypeVar("N")
E = TypeVar("E")
M = TypeVar("M")
C = TypeVar("C", bound=type)


def specialised(description: str, **fields: str) -> Callable[[C], C]:
    """`strawberry.type` for a subclass of Edge[...] or Connection[...], with
    its description and the descriptions of the inherited `fields` named."""

    def decorate(cls: C) -> C:
        strawberry.type(description=description)(cls)
        definition = get_object_definition(cls, strict=True)
        unknown = fields.keys() - {field.python_name for field in definition.fields}
        assert not unknown, f"{cls.__name__} has no fields {sorted(unknown)}"
        own = []
        for field in definition.fields:
            if field.python_name in fields:
                field = copy.copy(field)  # noqa: PLW2901 - the generic's stays as it is
                field.description = fields[field.python_name]
            own.append(field)
        definition.fields = own
        return cls

    return decorate


@strawberry.type(description="Where a page ends, and whether another follows.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="True when another page follows.")
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` to get the next page; null for an empty page."
    )

    @classmethod
    def from_page(cls, page: Page[Any]) -> PageInfo:
        return cls(has_next_page=page.has_next_page, end_cursor=page.end_cursor)


@strawberry.type
class Edge(Generic[N]):
    node: N = strawberry.field(description="The item.")

    _edge: Private[PageEdge[Any]]

    @classmethod
    def along(cls, page: Page[M], node: Callable[[M], N]) -> list[Self]:
        """The edges of a page, each node built from its row."""
        return [built(cls, {"node": node(edge.node), "_edge": edge}) for edge in page.edges]

    @resolver(description="Opaque position of this item in the list.")
    def cursor(self) -> str:
        # Built when asked for (an HMAC each).
        return self._edge.cursor


@strawberry.type
class Connection(Generic[E]):
    edges: list[E] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")

    _count: Private[Callable[[], Awaitable[int]]]

    @classmethod
    def of(
        cls,
        page: Page[Any],
        edges: list[E],
        count: Callable[[], Awaitable[int]] | None = None,
    ) -> Self:
        """`count` counts the rows when totalCount is asked for; without it the
        page's own count is served (charges and audit log count every page)."""
        return cls(edges=edges, page_info=PageInfo.from_page(page), _count=count or _total(page))

    @resolver(description="All items, not only this page.")
    async def total_count(self) -> int:
        # Counted when asked for: a COUNT reads every matching row.
        return await self._count()


def _total(page: Page[Any]) -> Callable[[], Awaitable[int]]:
    total = page.total_count
    if total is None:  # pragma: no cover - charges and audit pages always count
        raise RuntimeError("this page was not counted")

    async def counted() -> int:
        return total

    return counted


def page_size(first: int | None) -> int:
    """`first` as given; null: the default size."""
    return PAGE_SIZE_DEFAULT if first is None else first


def given_text(value: str | None) -> str | None:
    return value if isinstance(value, str) else None


def given(value: bool | None) -> bool | None:
    """An input field left out (UNSET) or null: no condition."""
    return value if isinstance(value, bool) else None
