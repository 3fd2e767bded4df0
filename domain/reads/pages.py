"""A page of rows: its edges, whether another follows, and the size it may have."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from domain.errors import DomainError, ErrorCode
from domain.reads.cursors import encode_cursor

T = TypeVar("T")

PAGE_SIZE_MIN = 1
PAGE_SIZE_MAX = 200


class Edge(Generic[T]):
    """A row and its cursor. The cursor (JSON, an HMAC, base64) is built when
    first read: a page whose cursors nobody asks for does not pay for them."""

    __slots__ = ("_cursor", "_position", "node")

    def __init__(self, node: T, position: tuple[str, str | None, int]) -> None:
        self.node = node
        self._position = position  # encode_cursor's arguments
        self._cursor: str | None = None

    @property
    def cursor(self) -> str:
        if self._cursor is None:
            self._cursor = encode_cursor(*self._position)
        return self._cursor


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    edges: list[Edge[T]]
    has_next_page: bool
    # None: not counted (users: see domain.reads.users.count_users).
    total_count: int | None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else None


def check_first(first: int) -> None:
    if not PAGE_SIZE_MIN <= first <= PAGE_SIZE_MAX:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"`first` must be between {PAGE_SIZE_MIN} and {PAGE_SIZE_MAX}.",
            field="first",
        )
