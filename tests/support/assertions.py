"""Assertions shared by the tests. Each takes what is checked first, then the expected
error code, then keyword options.

- Domain calls: `refused(call, code)` awaits a service call that must raise that
  DomainError; `refused_unchanged(call, code)` also shows the whole database unchanged.
- GraphQL payloads: `assert_refused(payload, code)` (exactly one {code, message, field}
  error, every other field null) and `assert_succeeded(payload, *fields)`.
- `Failures`: run every case of a table, then report all the failing ones at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from domain.errors import DomainError, ErrorCode
from tests.support.snapshot import database_snapshot


async def refused(
    call: Awaitable[Any], code: ErrorCode, *, field: str | None = None
) -> DomainError:
    """Await a call that must be refused with `code` (and `field`, when given)."""
    with pytest.raises(DomainError) as caught:
        await call
    assert caught.value.code == code, caught.value
    if field is not None:
        assert caught.value.field == field
    return caught.value


async def refused_unchanged(
    call: Awaitable[Any], code: ErrorCode, *, field: str | None = None
) -> DomainError:
    """Await a call that must be refused with `code` and change nothing at all."""
    before = await database_snapshot()
    error = await refused(call, code, field=field)
    assert await database_snapshot() == before
    return error


def assert_refused(
    payload: Mapping[str, Any], code: str, *, field: str | None = None
) -> dict[str, Any]:
    """Exactly one {code, message, field} error; every other field null."""
    errors = payload["errors"]
    assert len(errors) == 1, payload
    error = errors[0]
    assert set(error) == {"code", "message", "field"}, error
    assert error["code"] == code, payload
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["field"] == field, payload
    others = {name: value for name, value in payload.items() if name != "errors"}
    assert all(value is None for value in others.values()), payload
    return dict(error)


def assert_succeeded(payload: Mapping[str, Any], *fields: str) -> None:
    """errors [] and each documented field non-null."""
    assert payload["errors"] == [], payload
    for name in fields:
        assert payload[name] is not None, (name, payload)


class Failures:
    """Run every case of a table, then report all the failing ones at once."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}

    @contextmanager
    def case(self, name: str) -> Iterator[None]:
        try:
            yield
        except AssertionError as failure:
            self.found[name] = str(failure)

    def check(self) -> None:
        assert self.found == {}, "\n".join(f"{name}: {why}" for name, why in self.found.items())
