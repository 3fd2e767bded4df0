"""Typed forms of Strawberry's field decorators, and the ID of an object.

`@strawberry.field(description=...)` is typed as returning Any, which strict
mypy rejects on a decorated method ("untyped decorator"). These wrappers do
the same at run time and keep the method's own signature for the checker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import strawberry

F = TypeVar("F", bound=Callable[..., Any])


def resolver(*, description: str, name: str | None = None) -> Callable[[F], F]:
    """A field computed by the decorated method (sync for leaves, async for relations)."""
    decorate: Callable[[F], F] = strawberry.field(description=description, name=name)
    return decorate


def mutation(*, description: str) -> Callable[[F], F]:
    decorate: Callable[[F], F] = strawberry.mutation(description=description)
    return decorate


def object_id(key: int) -> strawberry.ID:
    """The contract's opaque ID of an object: the decimal form of its key."""
    return strawberry.ID(str(key))
