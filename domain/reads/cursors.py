"""Signed keyset cursors.

A cursor is URL-safe base64 of the list's kind, the sort key value and the row
id, plus an HMAC tag derived from the server's secret key: a cursor that was
not issued by this service (or was issued for another list or order) is
refused with INVALID_INPUT on the `after` input rather than silently starting
somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime
from functools import lru_cache

from domain import config
from domain.errors import DomainError, ErrorCode


def _cursor_key() -> bytes:
    return _derived_cursor_key(config.current().secret_key)


@lru_cache(maxsize=4)
def _derived_cursor_key(secret_key: bytes) -> bytes:
    return hmac.new(secret_key, b"pagination-cursor", hashlib.sha256).digest()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(kind: str, value: str | None, row_id: int) -> str:
    """`kind` names the list and its order; `value` is the sort key (None: id only)."""
    payload = json.dumps([kind, value, row_id], separators=(",", ":")).encode("utf-8")
    tag = hmac.new(_cursor_key(), payload, hashlib.sha256).digest()[:12]
    return f"{_b64encode(payload)}.{_b64encode(tag)}"


def bad_cursor() -> DomainError:
    return DomainError(
        ErrorCode.INVALID_INPUT,
        "`after` is not a cursor of this list; pass the endCursor of the previous page.",
        field="after",
    )


def decode_cursor(cursor: str, *, kind: str) -> tuple[str | None, int]:
    """Return (sort value, id) of a cursor issued for `kind`, or refuse it."""
    if len(cursor) > 1000 or cursor.count(".") != 1:
        raise bad_cursor()
    payload_text, tag_text = cursor.split(".")
    try:
        payload = _b64decode(payload_text)
        tag = _b64decode(tag_text)
    except (binascii.Error, ValueError):
        raise bad_cursor() from None
    expected = hmac.new(_cursor_key(), payload, hashlib.sha256).digest()[:12]
    if not hmac.compare_digest(tag, expected):
        raise bad_cursor()
    try:
        decoded = json.loads(payload)
    except ValueError:
        raise bad_cursor() from None
    if not (isinstance(decoded, list) and len(decoded) == 3 and decoded[0] == kind):
        raise bad_cursor()
    _, value, row_id = decoded
    if not (isinstance(value, str | None) and type(row_id) is int and row_id > 0):
        raise bad_cursor()
    return value, row_id


def datetime_key(value: str) -> datetime:
    """A sort value of a cursor that holds a time (refused unless it is one, with a zone)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad_cursor() from None
    if parsed.tzinfo is None:
        raise bad_cursor()
    return parsed.astimezone(UTC)
