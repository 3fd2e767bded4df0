"""The ASGI application: routes, middleware and the process's start-up and shutdown."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tortoise import connections
from tortoise.contrib.starlette import RegisterTortoise

from api import metrics
from api.demo import ensure_demo_account
from api.graphql_http import GraphQLEndpoint, GraphQLView
from api.logs import request_id_var
from domain.clock import SYSTEM_CLOCK, Clock
from domain.db import migrate, tortoise_config
from domain.settings import Settings, configure_domain

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
_INCOMING_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class BodyTooLarge(Exception):
    pass


class RequestBoundaryMiddleware:
    """Request id on every log line and response; bodies over 1 MiB refused with 413."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _INCOMING_REQUEST_ID.match(incoming) else secrets.token_hex(8)
        token = request_id_var.set(request_id)
        route = scope["path"] if scope["path"] in _ROUTES else "other"
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
                metrics.HTTP_RESPONSES.labels(route=route, status=str(message["status"])).inc()
            await send(message)

        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge
            return message

        try:
            declared = int(headers.get(b"content-length", b"0") or b"0")
        except ValueError:
            declared = 0
        try:
            if declared > MAX_BODY_BYTES:
                raise BodyTooLarge
            await self.app(scope, bounded_receive, send_with_id)
        except BodyTooLarge:
            if not started:
                response = JSONResponse(
                    {
                        "errors": [
                            {
                                "message": "Request body larger than 1 MiB.",
                                "extensions": {"code": "INVALID_INPUT"},
                            }
                        ]
                    },
                    status_code=413,
                )
                await response(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


_ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def readiness(settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    async def readyz(_: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            await connections.get("default").execute_query("SELECT 1")
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
    return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")


def create_app(settings: Settings | None = None, *, clock: Clock = SYSTEM_CLOCK) -> Starlette:
    settings = settings or Settings.from_env()
    configure_domain(settings)
    view = GraphQLView(
        clock=clock, introspection=settings.introspection, graphiql=settings.graphiql
    )
    endpoint = GraphQLEndpoint(view, clock=clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.embedded:
            await migrate(settings.database_url)
        async with RegisterTortoise(app, config=tortoise_config(settings.database_url)):
            if settings.demo_account:
                # Before the jobs start: the demo owner's password is set here,
                # so its password-set email is skipped rather than sent.
                await ensure_demo_account(settings, clock=clock)
            runner = await _start_background(settings, clock)
            try:
                yield
            finally:
                await runner.stop()

    routes: list[Any] = [
        Route("/graphql", endpoint, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readiness(settings), methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(RequestBoundaryMiddleware)
    return app


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
