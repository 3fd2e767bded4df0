"""Storage side of the `Idempotency-Key` header (api/graphql_http.py drives it).

A request with a key first `claim`s it:
- a fresh Claim: the key is new (or its record expired): a RUNNING record now
  exists; run the mutation, then `complete` the claim with the response body,
  or `abandon` it if the request crashed before producing a response.
- a replay Claim (`replay_body`): the same request (same fingerprint) already completed: send the
  stored body back with `Idempotent-Replayed: true`; nothing runs.
- IDEMPOTENCY_KEY_REUSED: the key was used with another request body.
- IDEMPOTENCY_KEY_IN_USE: the first request is still running; the HTTP layer
  may wait and claim again a few times before returning the error.

Scope: (account, principal, key); records live RECORD_TTL (24 h)
from the first request. The unique index on that triple decides every race:
the INSERT comes first, and whoever loses reads the winner's row.

The window that remains: the mutation commits in its own transaction, and
`complete` runs after it, once the GraphQL layer has built the response (it
cannot join the mutation's transaction). If the process dies between the
two, the record stays RUNNING. A retry then gets IDEMPOTENCY_KEY_IN_USE
until the record is `RECLAIM_RUNNING_AFTER` old (5 minutes, far longer than
any request may run), after which a retry with the same body takes the key
over and runs again. Reclaiming is the lesser evil: a process killed during
a request almost always dies before the commit (the mutation did not
happen, and the retry must run), while the commit-to-complete gap is a few
milliseconds; never reclaiming would refuse every retry for 24 hours. The
mutations' own rules (EMAIL_TAKEN, ALREADY_LICENSED, ...) catch most of the
rare double runs; a seat increase would be charged twice.

What to complete: every response that reached the client, refusals in a
payload included (the refusal is replayed, as it would be repeated). Abandon
only when no response was produced: the mutation's transaction rolled back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.failures import INTERNAL_ERROR_CODE
from domain.clock import Clock
from domain.errors import DomainError, ErrorCode
from domain.models import IdempotencyRecord
from domain.principal import Principal
from domain.security import API_TOKEN_PREFIX
from domain.webhook_secrets import SECRET_PREFIX as WEBHOOK_SECRET_PREFIX

log = logging.getLogger(__name__)

KEY_MAX_LENGTH = 255
# How long a key is remembered from its first request.
RECORD_TTL = timedelta(hours=24)
# A RUNNING record this old belongs to a request that died (see above).
RECLAIM_RUNNING_AFTER = timedelta(minutes=5)
# Insert, lose, re-read: the row read can vanish (abandoned, replaced) before
# we look; a few rounds settle it.
_CLAIM_ROUNDS = 3


@dataclass(frozen=True)
class Claim:
    """Either fresh (record_id: this request owns the key; run the mutation,
    then complete or abandon) or a replay (replay_body: the stored response of
    the same request, to send again; nothing runs)."""

    record_id: int | None = None
    replay_body: str | None = None

    def __post_init__(self) -> None:
        if (self.record_id is None) == (self.replay_body is None):
            raise ValueError("a claim is either fresh or a replay")

    @classmethod
    def fresh(cls, record_id: int) -> Claim:
        return cls(record_id=record_id)

    @classmethod
    def replay(cls, response_body: str) -> Claim:
        return cls(replay_body=response_body)

    @property
    def is_replay(self) -> bool:
        return self.replay_body is not None


def validate_key(key: str) -> None:
    """1-255 printable ASCII characters (0x20-0x7E), else INVALID_INPUT."""
    if not 1 <= len(key) <= KEY_MAX_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"Idempotency-Key must be 1 to {KEY_MAX_LENGTH} printable ASCII characters.",
        )


def request_fingerprint(
    query: str, variables: Mapping[str, Any] | None, operation_name: str | None
) -> str:
    """SHA-256 of the request as canonical JSON (sorted keys, no spaces).

    No variables and empty variables are the same request. The query text is
    compared as sent: reformatting it makes another request.
    """
    canonical = json.dumps(
        {
            "query": query,
            "variables": dict(variables) if variables else {},
            "operationName": operation_name,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def claim(*, actor: Principal, key: str, fingerprint: str, clock: Clock) -> Claim:
    validate_key(key)
    now = clock.now()
    scope = actor.idempotency_scope
    for _ in range(_CLAIM_ROUNDS):
        try:
            record = await IdempotencyRecord.create(
                account_id=actor.account_id,
                principal=scope,
                key=key,
                request_hash=fingerprint,
                created_at=now,
                expires_at=now + RECORD_TTL,
            )
        except IntegrityError:
            pass
        else:
            return Claim.fresh(record.id)

        existing = await IdempotencyRecord.get_or_none(
            account_id=actor.account_id, principal=scope, key=key
        )
        if existing is None:
            continue  # abandoned or replaced since our INSERT: try again
        if existing.expires_at <= now:
            # The key is free again, whatever it was used for.
            replaced = await _replace(existing, fingerprint=fingerprint, now=now)
        elif existing.request_hash != fingerprint:
            raise DomainError(
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "This Idempotency-Key was already used with a different request.",
            )
        elif existing.completed_at is not None and existing.response_body is not None:
            return Claim.replay(existing.response_body)
        elif existing.created_at <= now - RECLAIM_RUNNING_AFTER:
            log.warning(
                "reclaiming idempotency record %s left RUNNING since %s",
                existing.id,
                existing.created_at.isoformat(),
            )
            replaced = await _replace(existing, fingerprint=fingerprint, now=now)
        else:
            raise _in_use()
        if replaced is not None:
            return replaced
        # Another request replaced the row first: look again.
    raise _in_use()


def _in_use() -> DomainError:
    return DomainError(
        ErrorCode.IDEMPOTENCY_KEY_IN_USE,
        "A request with this Idempotency-Key is still running; retry later.",
    )


async def _replace(existing: IdempotencyRecord, *, fingerprint: str, now: datetime) -> Claim | None:
    """Delete exactly the row we read and insert ours, in one transaction.

    Deleting by id makes two requests replacing the same row race safely:
    the second deletes nothing and returns None (it then reads the winner's).
    """
    async with in_transaction() as connection:
        deleted = await IdempotencyRecord.filter(id=existing.id).using_db(connection).delete()
        if deleted != 1:
            return None
        record = await IdempotencyRecord.create(
            account_id=existing.account_id,
            principal=existing.principal,
            key=existing.key,
            request_hash=fingerprint,
            created_at=now,
            expires_at=now + RECORD_TTL,
            using_db=connection,
        )
    return Claim.fresh(record.id)


async def complete(*, claim: Claim, response_body: str, clock: Clock) -> None:
    """Store the response for replays. A replay has nothing to complete.

    Only the RUNNING row this claim inserted is written (ids are never
    reused): if it was reclaimed or pruned meanwhile, the response is not
    stored and a warning is logged.
    """
    if claim.record_id is None:
        return
    stored = await IdempotencyRecord.filter(id=claim.record_id, completed_at__isnull=True).update(
        response_body=response_body, completed_at=clock.now()
    )
    if stored != 1:
        log.warning("idempotency record %s was gone when its request completed", claim.record_id)


async def abandon(*, claim: Claim) -> None:
    """The request crashed before producing a response: free the key for a retry.

    A replay has nothing to abandon."""
    if claim.record_id is None:
        return
    await IdempotencyRecord.filter(id=claim.record_id, completed_at__isnull=True).delete()


# ---------------------------------------------------------------------------
# What a replay sends back

# An API token's secret: the prefix and 32 random bytes, URL-safe base64.
_API_TOKEN_SECRET = re.compile(rf"^{re.escape(API_TOKEN_PREFIX)}[A-Za-z0-9_-]{{43}}$")
# A webhook secret: whsec_ and 32 random bytes, standard base64.
_WEBHOOK_SECRET = re.compile(rf"^{re.escape(WEBHOOK_SECRET_PREFIX)}[A-Za-z0-9+/]{{43}}=$")


def redact_secrets(value: Any) -> Any:
    """The value with every API-token and webhook secret in it replaced by None (aliases
    included: secrets are recognised by their form, not by their field name)."""
    if isinstance(value, dict):
        return {key: redact_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_secrets(item) for item in value]
    if isinstance(value, str) and (_API_TOKEN_SECRET.match(value) or _WEBHOOK_SECRET.match(value)):
        return None
    return value


def replayable_body(body: bytes) -> str | None:
    """What to store for replays of this response, or None to store nothing.

    Nothing when an unexpected error left every root field null: the mutation
    raised, its transaction rolled back, and a retry must run it again.
    """
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", errors="replace")
    if not isinstance(decoded, dict):
        return body.decode("utf-8", errors="replace")
    errors = decoded.get("errors") or []
    data = decoded.get("data")
    failed = any(
        isinstance(error, dict)
        and (error.get("extensions") or {}).get("code") == INTERNAL_ERROR_CODE
        for error in errors
    )
    produced = isinstance(data, dict) and any(value is not None for value in data.values())
    if failed and not produced:
        return None
    redacted = redact_secrets(decoded)
    if redacted == decoded:
        return body.decode("utf-8")
    return json.dumps(redacted, separators=(",", ":"), ensure_ascii=False)
