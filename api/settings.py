"""The HTTP server's settings: where it listens, what /graphql offers browsers.

Read once from the environment beside the process's Settings
(domain/settings.py); the README's configuration table lists both, in the
order of SETTINGS then API_SETTINGS, and a test keeps it in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from domain.reads.exports import EXPORT_BATCH_SIZE
from domain.settings import (
    Setting,
    Settings,
    SettingsError,
    env_value,
    parse_bool,
    parse_positive_int,
)

API_SETTINGS: tuple[Setting, ...] = (
    Setting("HOST", "127.0.0.1", "Default address for `licenses serve`."),
    Setting("PORT", "8000", "Default port for `licenses serve`."),
    Setting(
        "GRAPHIQL",
        None,
        "Serve GraphiQL at GET /graphql. Default: on in development, off in production.",
    ),
    Setting(
        "INTROSPECTION",
        None,
        "Allow schema introspection. Default: on in development, off in production.",
    ),
    Setting(
        "CORS_ALLOWED_ORIGINS",
        None,
        "Comma-separated exact origins (`https://console.example.com`) whose pages may call "
        "/graphql. Unset: same origin only. `*` (any origin) is refused in production.",
    ),
    Setting(
        "PERSISTED_QUERIES",
        "apq",
        "`apq` (Apollo's automatic persisted queries; any valid document) or `allowlist` "
        "(only the documents of the manifests). See `docs/web-clients.md`.",
    ),
    Setting(
        "PERSISTED_QUERIES_MANIFEST",
        None,
        "An operator's manifest of extra allowed operations, read beside the shipped "
        "`api/persisted_operations.json` (same format).",
    ),
    Setting(
        "EXPORT_BATCH_SIZE",
        str(EXPORT_BATCH_SIZE),
        "Rows read per statement by the CSV exports (`/export/users.csv`, "
        "`/export/audit.csv`), 1..10000: what a download holds in memory at a time.",
    ),
    Setting(
        "GRAPHQL_COMPILED_PLAN",
        "on",
        "`on`: each cached GraphQL document runs through a compiled execution plan that "
        "reads plain fields directly (same responses); `off`: graphql-core's executor only.",
    ),
)

EXPORT_BATCH_SIZE_MAX = 10_000

PERSISTED_QUERY_MODES = ("apq", "allowlist")


def _parse_origins(raw: str | None, *, production: bool) -> tuple[str, ...]:
    """CORS_ALLOWED_ORIGINS: exact origins (scheme://host[:port]), or `*` outside production."""
    name = "CORS_ALLOWED_ORIGINS"
    origins = tuple(item.strip() for item in (raw or "").split(",") if item.strip())
    if "*" in origins:
        if production:
            raise SettingsError(name, "a wildcard (*) is not allowed in production")
        if len(origins) > 1:
            raise SettingsError(name, "* stands alone: any origin")
        return origins
    for origin in origins:
        parts = urlsplit(origin)
        try:
            _ = parts.port
        except ValueError:
            raise SettingsError(name, f"bad port in {origin!r}") from None
        exact = f"{parts.scheme}://{parts.netloc}"
        if parts.scheme not in ("http", "https") or not parts.hostname or origin != exact:
            raise SettingsError(
                name, f"expected origins such as https://console.example.com, got {origin!r}"
            )
        if "*" in origin or origin != origin.lower():
            raise SettingsError(name, f"origins are exact and lower case, got {origin!r}")
    return origins


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    graphiql: bool = True
    introspection: bool = True
    cors_allowed_origins: tuple[str, ...] = ()
    persisted_queries: str = "apq"
    persisted_queries_manifest: Path | None = None
    export_batch_size: int = EXPORT_BATCH_SIZE
    graphql_compiled_plan: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env_value(env, name)

        production = (get("ENVIRONMENT") or "development").lower() == "production"
        graphiql_raw = get("GRAPHIQL")
        introspection_raw = get("INTROSPECTION")
        persisted_queries = (get("PERSISTED_QUERIES") or "apq").lower()
        if persisted_queries not in PERSISTED_QUERY_MODES:
            raise SettingsError("PERSISTED_QUERIES", "expected apq or allowlist")
        manifest_raw = get("PERSISTED_QUERIES_MANIFEST")
        if manifest_raw is not None and not Path(manifest_raw).is_file():
            raise SettingsError("PERSISTED_QUERIES_MANIFEST", f"no such file: {manifest_raw!r}")
        return cls(
            host=get("HOST") or "127.0.0.1",
            port=parse_positive_int("PORT", get("PORT") or "8000", maximum=65535),
            graphiql=parse_bool("GRAPHIQL", graphiql_raw) if graphiql_raw else not production,
            introspection=(
                parse_bool("INTROSPECTION", introspection_raw)
                if introspection_raw
                else not production
            ),
            cors_allowed_origins=_parse_origins(get("CORS_ALLOWED_ORIGINS"), production=production),
            persisted_queries=persisted_queries,
            persisted_queries_manifest=Path(manifest_raw) if manifest_raw else None,
            export_batch_size=parse_positive_int(
                "EXPORT_BATCH_SIZE",
                get("EXPORT_BATCH_SIZE") or str(EXPORT_BATCH_SIZE),
                maximum=EXPORT_BATCH_SIZE_MAX,
            ),
            graphql_compiled_plan=parse_bool(
                "GRAPHQL_COMPILED_PLAN", get("GRAPHQL_COMPILED_PLAN") or "on"
            ),
        )


def public_url_for(settings: Settings, *, host: str, port: int) -> Settings:
    """The settings of a server on host:port: the public URL follows the address
    unless PUBLIC_URL was given, so links and the start banner name that port."""
    if settings.public_url_configured:
        return settings
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a name, no bind
    if ":" in shown:
        shown = f"[{shown}]"
    return replace(settings, public_url=f"http://{shown}:{port}")
