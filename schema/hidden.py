"""Fields a viewer may not read, without a resolver per field.

A MEMBER reading another user sees its public fields only; the others answer
FORBIDDEN (with null). Giving each such field a resolver method that checks
the viewer costs several times a plain attribute, and a page of users reads
hundreds of them. Instead the object stores HIDDEN in the fields the viewer
may not read, and the schema resolves every plain attribute with
`resolve_attribute`: `getattr`, except that HIDDEN raises the FORBIDDEN error.
"""

from __future__ import annotations

from typing import Any

from schema.errors import ForbiddenError

HIDDEN_MESSAGE = "A MEMBER sees only the public fields of another user."


class _Hidden:
    __slots__ = ()

    def __repr__(self) -> str:
        return "HIDDEN"


# Typed Any: it stands in fields of any type.
HIDDEN: Any = _Hidden()


def hidden_error() -> ForbiddenError:
    return ForbiddenError(HIDDEN_MESSAGE)


def resolve_attribute(source: Any, name: str) -> Any:
    """The schema's default resolver (StrawberryConfig.default_resolver)."""
    value = getattr(source, name)
    if value is HIDDEN:
        raise hidden_error()
    return value
