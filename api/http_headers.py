"""The headers browsers rely on: CORS for the configured origins, caching, sniffing, Vary.

- CORS (CORS_ALLOWED_ORIGINS): Starlette's CORSMiddleware, on /graphql only.
  Preflights for GET and POST with Authorization, Content-Type and
  Idempotency-Key are answered; responses expose X-Request-ID and
  Idempotent-Replayed. No credentials mode: the API authenticates with
  bearer tokens, never cookies, so a page's ambient credentials give it
  nothing here.
- Every response: `X-Content-Type-Options: nosniff`.
- /graphql responses, and any response to a request carrying Authorization:
  `Cache-Control: no-store`. A GraphQL answer holds one principal's data (or
  a session token), which no shared or browser cache may keep.
- /graphql responses: `Vary: Authorization, Accept` (the answer depends on the
  token and on the negotiated media type), plus `Origin` when CORS applies.

These wrap every other middleware (install them last), so that the answers
the request boundary makes itself (413, 503) carry them too, and a browser
can read those as well.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.settings import ApiSettings

GRAPHQL_PATH = "/graphql"
CORS_METHODS = ("GET", "POST")
CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")
CORS_EXPOSED_HEADERS = ("X-Request-ID", "Idempotent-Replayed")
PREFLIGHT_MAX_AGE_SECONDS = 600


def merged_vary(values: Iterable[str]) -> str:
    """One Vary value holding each field name once, in first-seen order."""
    seen: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            name = item.strip()
            if name and name.lower() not in seen:
                seen[name.lower()] = name
    return ", ".join(seen.values())


class GraphQLCORS:
    """CORSMiddleware for /graphql; every other path is same-origin only."""

    def __init__(self, app: ASGIApp, *, origins: tuple[str, ...]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            allow_credentials=False,
            max_age=PREFLIGHT_MAX_AGE_SECONDS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == GRAPHQL_PATH:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class WebHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, vary_origin: bool) -> None:
        self.app = app
        graphql_vary = ["Authorization", "Accept"]
        if vary_origin:
            graphql_vary.insert(0, "Origin")
        self.graphql_vary = tuple(graphql_vary)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        graphql = scope["path"] == GRAPHQL_PATH
        preflight = scope["method"] == "OPTIONS"
        authenticated = "authorization" in Headers(scope=scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if (graphql or authenticated) and not preflight:
                    headers["Cache-Control"] = "no-store"
                if graphql:
                    vary = merged_vary([*headers.getlist("Vary"), *self.graphql_vary])
                    del headers["Vary"]
                    headers["Vary"] = vary
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_web_client_middleware(app: Starlette, settings: ApiSettings) -> None:
    """CORS (when origins are configured) and the response headers; call after
    every other `add_middleware`, so these run outermost."""
    origins = settings.cors_allowed_origins
    if origins:
        app.add_middleware(GraphQLCORS, origins=origins)
    app.add_middleware(WebHeadersMiddleware, vary_origin=bool(origins))
