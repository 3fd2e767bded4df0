"""An app served by a real uvicorn on the test's own event loop, on a free loopback port.

For what only a socket shows (a chunked body that ends before its last chunk,
backpressure), while the test keeps its database, clock and monkeypatches:
the server runs no lifespan (the `db` fixture has initialised Tortoise), with
the options of `licenses serve` (api/cli.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette

from tests.support.local_services import LOOPBACK, find_free_port


@asynccontextmanager
async def served(app: Starlette) -> AsyncIterator[str]:
    """The base URL of `app` served by uvicorn until the block ends."""
    port = find_free_port()
    config = uvicorn.Config(
        app,
        host=LOOPBACK,
        port=port,
        lifespan="off",
        log_config=None,
        log_level="warning",
        server_header=False,
    )
    # serve() puts the runner's signal handlers back when it returns.
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
