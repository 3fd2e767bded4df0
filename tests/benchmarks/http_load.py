"""A small closed-loop HTTP/1.1 load generator: N keep-alive connections, one
request in flight on each, for a fixed time.

Hand-written on asyncio streams rather than httpx: on a 2-core machine the
client shares the CPU with the server, and httpx costs several times more
per request than the server's cheapest route, which would flatten every
ratio. This client costs a few tens of microseconds per request. It runs in
the harness process; the server is always another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# A request is the full bytes to send; `make(i)` builds the i-th (i counts per run).
RequestFactory = Callable[[int], bytes]
# Raises when the response is not what the benchmark expects.
Checker = Callable[[int, bytes], None]


def build_request(
    method: str,
    path: str,
    *,
    host: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpConnection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, _, header_block = head.partition(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length: int | None = None
        chunked = False
        close = False
        for line in header_block.split(b"\r\n"):
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value.strip())
            elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif lowered == b"connection" and value.strip().lower() == b"close":
                close = True
        if chunked:
            body = await self._read_chunked()
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            body = await self.reader.read()
            close = True
        if close:
            await self.close()
        return status, body

    async def _read_chunked(self) -> bytes:
        assert self.reader is not None
        parts: list[bytes] = []
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    first_error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


async def closed_loop(
    host: str,
    port: int,
    make: RequestFactory,
    *,
    concurrency: int,
    seconds: float | None = None,
    total: int | None = None,
    check: Checker | None = None,
) -> LoadResult:
    """`concurrency` connections send requests back to back until `seconds`
    have passed (or `total` requests were sent). Only successful requests are
    counted; an error is counted and the connection reopened."""
    if (seconds is None) == (total is None):
        raise ValueError("give seconds or total")
    connections = [HttpConnection(host, port) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in connections))
    latencies: list[float] = []
    counter = 0
    errors = 0
    first_error: list[str] = []
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else float("inf")

    async def client(connection: HttpConnection) -> None:
        nonlocal counter, errors
        while True:
            if total is not None and counter >= total:
                return
            index = counter
            counter += 1
            raw = make(index)
            sent = time.perf_counter()
            if sent >= deadline:
                return
            try:
                status, body = await connection.request(raw)
                if check is not None:
                    check(status, body)
                elif status != 200:
                    raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
            except Exception as exc:
                errors += 1
                if not first_error:
                    first_error.append(f"{type(exc).__name__}: {exc}")
                await connection.close()
                continue
            latencies.append(time.perf_counter() - sent)

    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        elapsed = time.perf_counter() - started
        await asyncio.gather(*(c.close() for c in connections))
    return LoadResult(
        requests=len(latencies),
        errors=errors,
        seconds=elapsed,
        latencies=latencies,
        first_error=first_error[0] if first_error else None,
    )


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]
