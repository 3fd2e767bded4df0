"""The ASGI application: routes, middleware and the process's start-up and shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from tortoise import connections
from tortoise.contrib.starlette import RegisterTortoise

from api import metrics
from api.console import console_routes
from api.demo import ensure_demo_account
from api.exports import export_routes
from api.graphql_http import GraphQLEndpoint, GraphQLView
from api.graphql_over_http import WebGraphQL
from api.http_headers import add_web_client_middleware
from api.middleware import RequestBoundaryMiddleware
from api.persisted_queries import PersistedQueries
from api.scim import scim_mount
from api.settings import ApiSettings
from domain.auth_cache import principal_cache
from domain.clock import SYSTEM_CLOCK, Clock
from domain.db import migrate, tortoise_config
from domain.settings import Settings, configure_domain

log = logging.getLogger(__name__)


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def readiness(settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    async def readyz(_: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            # Bounded: a database that hangs must not hang the probe too.
            await asyncio.wait_for(connections.get("default").execute_query("SELECT 1"), 5)
            checks["database"] = "ok"
        except Exception as exc:  # any failure means not ready; the reason is logged
            log.warning("readiness: database unreachable: %s", exc)
            checks["database"] = "unreachable"
        if settings.redis_url is not None:
            checks["broker"] = "ok" if await _redis_answers(settings.redis_url) else "unreachable"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", **checks},
            status_code=200 if ready else 503,
        )

    return readyz


async def _redis_answers(url: str) -> bool:
    from redis.asyncio import Redis  # noqa: PLC0415 - only production mode needs it

    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(await client.ping())
    except Exception:  # unreachable, refused, timed out: all "not ready"
        return False
    finally:
        await client.aclose()


async def metrics_endpoint(_: Request) -> Response:
    # The email backlog comes from the outbox table at each scrape; when the
    # database does not answer, the gauges keep their last values.
    await metrics.refresh_outbox_backlog(clock=SYSTEM_CLOCK)
    return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")


def create_app(
    settings: Settings | None = None,
    *,
    api_settings: ApiSettings | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Starlette:
    settings = settings or Settings.from_env()
    api_settings = api_settings or ApiSettings.from_env()
    configure_domain(settings)
    view = GraphQLView(
        clock=clock,
        introspection=api_settings.introspection,
        graphiql=api_settings.graphiql,
        compiled_plan=api_settings.graphql_compiled_plan,
    )
    persisted = PersistedQueries.from_settings(api_settings, redis_url=settings.redis_url)
    endpoint = WebGraphQL(GraphQLEndpoint(view, clock=clock), persisted=persisted)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.embedded:
            await migrate(settings.database_url)
        async with (
            RegisterTortoise(app, config=tortoise_config(settings.database_url)),
            principal_cache(settings.database_url),
        ):
            if settings.demo_account:
                # Before the jobs start: the demo owner's password is set here,
                # so its password-set email is skipped rather than sent.
                await ensure_demo_account(settings, clock=clock)
            runner = await _start_background(settings, clock)
            _freeze_startup_heap()
            try:
                yield
            finally:
                gc.unfreeze()
                await runner.stop()
                await persisted.aclose()

    routes: list[Any] = [
        Route("/graphql", endpoint, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readiness(settings), methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        # CSV exports of the account's users and audit log (bearer, ADMIN/OWNER or API token).
        *export_routes(clock, batch_size=api_settings.export_batch_size),
        # SCIM 2.0 provisioning for identity providers (docs/scim.md).
        scim_mount(clock),
        # The web console (/, /accept-invitation, /assets/…): a client of /graphql like any other.
        *console_routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(RequestBoundaryMiddleware)
    add_web_client_middleware(app, api_settings)
    return app


def _freeze_startup_heap() -> None:
    """Leave what start-up built (modules, the schema, the ORM's models) out of
    garbage collection: it lives as long as the process, and every full
    collection would otherwise walk all of it again. A users page allocates
    enough objects to trigger collections on most requests; before this, they
    took about a fifth of its CPU time (benchmark B1, docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()


async def _start_background(settings: Settings, clock: Clock) -> Any:
    """Embedded: jobs on this event loop. Production: hand outbox rows to Dramatiq."""
    if settings.embedded:
        from workers.embedded import EmbeddedRunner  # noqa: PLC0415

        runner: Any = EmbeddedRunner(settings=settings, clock=clock)
    else:
        from workers.broker import ProductionDispatch  # noqa: PLC0415

        runner = ProductionDispatch(settings=settings)
    await runner.start()
    return runner
