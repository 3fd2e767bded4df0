"""POSTing one signed webhook: 10 s in all, no redirects, at most 64 KiB of
the answer read, no proxy from the environment (it would bypass the guard)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpcore
import httpx

from workers.webhooks.guard import GuardedBackend, RefusedAddress

TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "licenses-users-webhooks/1"


@dataclass(frozen=True)
class PostResult:
    status: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def build_client(*, allow_private: bool, timeout: float = TIMEOUT_SECONDS) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(trust_env=False, retries=0)
    # httpx has no public way to choose httpcore's network backend; the pool
    # is replaced by one using the guarded backend (pinned by the guard tests).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=50,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(allow_private=allow_private),
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": USER_AGENT},
    )


async def post_webhook(
    client: httpx.AsyncClient,
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    budget_seconds: float | None = None,
) -> PostResult:
    """`budget_seconds`: cut earlier than the 10 s when the claim's lease is
    shorter (OUTBOX_LEASE_SECONDS), so no second claim overlaps the send."""
    # Read at call time, so a test can shorten it.
    timeout = TIMEOUT_SECONDS if budget_seconds is None else min(TIMEOUT_SECONDS, budget_seconds)
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout(timeout):
            request = client.build_request("POST", url, content=body, headers=headers)
            response = await client.send(request, stream=True)
            try:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_RESPONSE_BYTES:
                        break
            finally:
                await response.aclose()
    except TimeoutError:
        return PostResult(None, f"no answer within {timeout:g} s", elapsed())
    except httpx.TimeoutException:
        return PostResult(None, f"no answer within {timeout:g} s", elapsed())
    except httpx.HTTPError as exc:
        if isinstance(exc.__cause__, RefusedAddress):
            return PostResult(None, f"refused: {exc.__cause__}", elapsed())
        return PostResult(None, f"{type(exc).__name__}: {exc}", elapsed())
    status = response.status_code
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return PostResult(status, error, elapsed())
