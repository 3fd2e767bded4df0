"""Custom scalars of the contract: DateTime (with an explicit UTC offset), JSON, BigInt."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import NewType

import strawberry
from graphql import GraphQLError
from strawberry.types.scalar import ScalarDefinition

BigInt = NewType("BigInt", int)
JSON = NewType("JSON", object)

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def serialize_datetime(value: datetime) -> str:
    tzinfo = value.tzinfo
    if tzinfo is UTC:  # what both backends read (a page writes a couple of hundred)
        return value.isoformat()
    if tzinfo is None:
        raise ValueError("DateTime values must be timezone-aware")
    return value.astimezone(UTC).isoformat()


def parse_datetime(value: object) -> datetime:
    # GraphQLError, not ValueError: a value the client got wrong is a request
    # error. graphql-core reports any other exception from an inline literal
    # with it as `original_error`, which the HTTP layer masks as an internal
    # error (and logs with a stack trace).
    if not isinstance(value, str):
        raise GraphQLError("DateTime must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise GraphQLError(f"Invalid ISO 8601 DateTime: {value[:100]!r}") from None
    if parsed.tzinfo is None:
        raise GraphQLError("DateTime needs an explicit UTC offset (e.g. Z or +00:00)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise GraphQLError("DateTime out of range") from None


def serialize_bigint(value: int) -> int:
    return int(value)


def parse_bigint(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise GraphQLError("BigInt must be an integer")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise GraphQLError("BigInt must fit in 64 bits")
    return value


def _identity(value: object) -> object:
    return value


SCALARS: Mapping[object, ScalarDefinition] = {
    datetime: strawberry.scalar(
        name="DateTime",
        description="An instant, ISO 8601 with an explicit UTC offset "
        "(e.g. 2026-03-10T12:00:00+00:00).",
        serialize=serialize_datetime,
        parse_value=parse_datetime,
    ),
    BigInt: strawberry.scalar(
        name="BigInt",
        description="A 64-bit integer (money in minor units), serialised as a JSON number.",
        serialize=serialize_bigint,
        parse_value=parse_bigint,
    ),
    JSON: strawberry.scalar(
        name="JSON",
        description="Any JSON value.",
        serialize=_identity,
        parse_value=_identity,
    ),
}
