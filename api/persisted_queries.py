"""Persisted queries: Apollo's automatic persisted queries (APQ) and the allowlist.

A request names its document by `extensions.persistedQuery = {"version": 1,
"sha256Hash": "<64 hex digits>"}`, with or without the document itself:

- hash alone, document known: it runs; unknown: the top-level error
  PERSISTED_QUERY_NOT_FOUND with the message Apollo's client waits for
  ("PersistedQueryNotFound"), after which the client sends hash + document;
- hash + document: the hash must be the document's SHA-256 (else a 400), the
  document runs and, once it passed validation, is remembered under its hash.

Where documents are kept (PERSISTED_QUERIES=apq, the default): in Redis when
REDIS_URL is set (every API process sees what any of them learnt), else in a
bounded in-process LRU. Each process also keeps the documents it used
recently, pinned in `api.graphql_cache`, so a known document is parsed and
validated once per process, not once per request.

PERSISTED_QUERIES=allowlist runs only the documents of the manifests (the
shipped `api/persisted_operations.json` and the operator's
PERSISTED_QUERIES_MANIFEST), sent by hash or in full; anything else gets
PERSISTED_QUERY_REQUIRED. The manifest format is Apollo's persisted query
manifest; docs/web-clients.md describes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from graphql import OperationDefinitionNode, parse
from graphql.error import GraphQLSyntaxError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api import graphql_cache
from api.settings import ApiSettings
from domain.errors import DependencyUnavailable, ErrorCode
from domain.settings import SettingsError

log = logging.getLogger(__name__)

APQ_VERSION = 1
SHIPPED_MANIFEST = Path(__file__).with_name("persisted_operations.json")
MANIFEST_FORMAT = "apollo-persisted-query-manifest"
# Apollo's client recognises a miss by this message (or by the code).
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
REQUIRED_MESSAGE = "Only documents of the persisted-query manifest are accepted."
# Documents this process keeps parsed and validated (and, without Redis, all
# the documents it knows besides the manifests').
LOCAL_DOCUMENTS = 500
# Larger documents run but are not stored: a store entry is the client's
# shortcut, not a place to park megabytes.
MAX_STORED_BYTES = 64 * 1024
REDIS_TTL_SECONDS = 7 * 24 * 3600
REDIS_KEY_PREFIX = "licenses:persisted-query:"
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


class PersistedQueryError(Exception):
    """A persisted-query refusal: a top-level error with its code. `status` is
    the HTTP status for application/json clients."""

    def __init__(self, code: ErrorCode, message: str, *, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


class Store(Protocol):
    async def get(self, sha256: str) -> str | None: ...

    async def put(self, sha256: str, document: str) -> None: ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """A bounded LRU of documents by hash; each held document is pinned in the
    document cache (parsed and validated once) until it is evicted."""

    def __init__(self, max_documents: int = LOCAL_DOCUMENTS) -> None:
        self.max_documents = max_documents
        self._documents: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._documents)

    async def get(self, sha256: str) -> str | None:
        document = self._documents.get(sha256)
        if document is not None:
            self._documents.move_to_end(sha256)
        return document

    async def put(self, sha256: str, document: str) -> None:
        if sha256 in self._documents:
            self._documents.move_to_end(sha256)
            return
        self._documents[sha256] = document
        graphql_cache.pin(document)
        while len(self._documents) > self.max_documents:
            _, evicted = self._documents.popitem(last=False)
            graphql_cache.unpin(evicted)

    async def aclose(self) -> None:
        return None


class RedisStore:
    """Documents in Redis, shared by every API process, each kept for a week
    after its last use; recently used ones also in a local MemoryStore."""

    def __init__(self, url: str, *, ttl_seconds: int = REDIS_TTL_SECONDS) -> None:
        from redis.asyncio import Redis  # noqa: PLC0415 - only with REDIS_URL

        self.ttl_seconds = ttl_seconds
        self.local = MemoryStore()
        self._redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)

    async def get(self, sha256: str) -> str | None:
        document = await self.local.get(sha256)
        if document is not None:
            return document
        try:
            stored = await self._redis.getex(REDIS_KEY_PREFIX + sha256, ex=self.ttl_seconds)
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise DependencyUnavailable("redis", str(error) or type(error).__name__) from None
        if stored is None:
            return None
        document = stored.decode("utf-8") if isinstance(stored, bytes) else str(stored)
        if sha256_hex(document) != sha256:
            # Not ours, or damaged: never run a document under a wrong hash.
            return None
        await self.local.put(sha256, document)
        return document

    async def put(self, sha256: str, document: str) -> None:
        await self.local.put(sha256, document)
        try:
            await self._redis.set(REDIS_KEY_PREFIX + sha256, document, ex=self.ttl_seconds)
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            # The request itself succeeded; other processes will learn the
            # document from the client's next miss.
            log.warning("persisted query not shared (Redis unavailable): %s", error)

    async def aclose(self) -> None:
        await self._redis.aclose()


@dataclass(frozen=True)
class ManifestOperation:
    id: str
    name: str
    type: str
    body: str


def load_manifest(path: Path, *, variable: str) -> dict[str, ManifestOperation]:
    """The operations of a manifest by hash; a SettingsError naming `variable`
    (with the file and the operation) when the file is not a valid manifest."""

    def refuse(problem: str) -> SettingsError:
        return SettingsError(variable, f"{path}: {problem}")

    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise refuse(f"not a readable JSON file ({error})") from None
    if not isinstance(content, dict) or content.get("format") != MANIFEST_FORMAT:
        raise refuse(f'expected {{"format": "{MANIFEST_FORMAT}", "version": 1, ...}}')
    if content.get("version") != 1:
        raise refuse("only version 1 of the manifest format is known")
    operations = content.get("operations")
    if not isinstance(operations, list):
        raise refuse('"operations" must be a list')
    found: dict[str, ManifestOperation] = {}
    for index, entry in enumerate(operations):
        where = f"operations[{index}]"
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(key), str) for key in ("id", "name", "type", "body")
        ):
            raise refuse(f"{where} needs the strings id, name, type and body")
        body = entry["body"]
        if entry["id"] != sha256_hex(body):
            raise refuse(f"{where} ({entry['name']}): id is not the SHA-256 of body")
        try:
            document = parse(body)
        except GraphQLSyntaxError as error:
            raise refuse(f"{where} ({entry['name']}): {error.message}") from None
        kinds = {
            definition.operation.value
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        }
        if kinds != {entry["type"]}:
            raise refuse(f"{where} ({entry['name']}): type says {entry['type']!r}")
        found[entry["id"]] = ManifestOperation(
            id=entry["id"], name=entry["name"], type=entry["type"], body=body
        )
    return found


def load_manifests(settings: ApiSettings) -> dict[str, ManifestOperation]:
    """The shipped manifest's operations and the operator's (which win on a clash)."""
    manifest = load_manifest(SHIPPED_MANIFEST, variable="PERSISTED_QUERIES")
    if settings.persisted_queries_manifest is not None:
        manifest.update(
            load_manifest(
                settings.persisted_queries_manifest, variable="PERSISTED_QUERIES_MANIFEST"
            )
        )
    return manifest


@dataclass(frozen=True)
class Resolved:
    """`document`: the persisted document a hash-only request runs (None: the
    request runs as sent); `learn`: the (hash, document) to remember once it
    ran without a request error."""

    document: str | None = None
    learn: tuple[str, str] | None = None


class PersistedQueries:
    def __init__(
        self,
        *,
        allowlist: bool,
        manifest: Mapping[str, ManifestOperation],
        store: Store | None = None,
    ) -> None:
        self.allowlist = allowlist
        self.manifest = dict(manifest)
        self.store: Store = store if store is not None else MemoryStore()
        for operation in self.manifest.values():
            graphql_cache.pin(operation.body)

    @classmethod
    def from_settings(cls, settings: ApiSettings, *, redis_url: str | None) -> PersistedQueries:
        manifest = load_manifests(settings)
        allowlist = settings.persisted_queries == "allowlist"
        store: Store | None = None
        if not allowlist and redis_url is not None:
            store = RedisStore(redis_url)
        return cls(allowlist=allowlist, manifest=manifest, store=store)

    async def resolve(self, query: object, extensions: object) -> Resolved:
        """The document to run; PersistedQueryError when there is none to run;
        DependencyUnavailable when the store is needed and Redis is down."""
        requested = _requested_hash(extensions)
        if query is not None and not isinstance(query, str):
            return Resolved()  # not a document at all: refused downstream (400)
        if requested is None:
            if self.allowlist and query is not None and sha256_hex(query) not in self.manifest:
                raise _required()
            return Resolved()
        if query is not None:
            if sha256_hex(query) != requested:
                raise PersistedQueryError(
                    ErrorCode.INVALID_INPUT,
                    "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query.",
                    status=400,
                )
            if requested in self.manifest:
                return Resolved()
            if self.allowlist:
                raise _required()
            return Resolved(learn=(requested, query))
        known = self.manifest.get(requested)
        if known is not None:
            return Resolved(document=known.body)
        if self.allowlist:
            raise _required()
        document = await self.store.get(requested)
        if document is None:
            raise PersistedQueryError(
                ErrorCode.PERSISTED_QUERY_NOT_FOUND, NOT_FOUND_MESSAGE, status=200
            )
        return Resolved(document=document)

    async def learn(self, sha256: str, document: str) -> None:
        if len(document.encode("utf-8")) <= MAX_STORED_BYTES:
            await self.store.put(sha256, document)

    async def aclose(self) -> None:
        await self.store.aclose()


def _required() -> PersistedQueryError:
    return PersistedQueryError(ErrorCode.PERSISTED_QUERY_REQUIRED, REQUIRED_MESSAGE, status=200)


def _requested_hash(extensions: object) -> str | None:
    """The hash a request names (lower case), None when it names none; a
    PersistedQueryError (400) when extensions.persistedQuery is malformed."""
    if not isinstance(extensions, dict) or "persistedQuery" not in extensions:
        return None
    persisted: Any = extensions["persistedQuery"]
    if not isinstance(persisted, dict):
        raise _malformed("extensions.persistedQuery must be an object.")
    if persisted.get("version") != APQ_VERSION:
        raise _malformed("Unsupported persisted query version (expected 1).")
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or not _SHA256_HEX.match(sha):
        raise _malformed("extensions.persistedQuery.sha256Hash must be 64 hex digits.")
    return sha.lower()


def _malformed(message: str) -> PersistedQueryError:
    return PersistedQueryError(ErrorCode.INVALID_INPUT, message, status=400)
