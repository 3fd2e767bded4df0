"""`licenses serve` as a real process: its start banner, and what a TCP client sees."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.live_server import answers_ready
from tests.support.local_services import find_free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@dataclass
class Served:
    port: int
    banner: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("serve")
    port = find_free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PUBLIC_URL", "DATABASE_URL", "REDIS_URL", "MAIL_URL", "PORT")
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        cwd=workdir,
        env={**env, "PYTHONPATH": str(ROOT), "SECRET_KEY": "s" * 40},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "Application startup complete" in line:
                break
        assert any("Application startup complete" in line for line in lines), "".join(lines)
        # Keep reading, so the server never blocks on a full pipe.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        # uvicorn reports start-up complete before it listens.
        while not answers_ready(f"http://127.0.0.1:{port}/readyz"):
            assert time.monotonic() < deadline, "the server never answered /readyz"
            time.sleep(0.05)
        yield Served(port=port, banner="".join(lines))
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_given_serve_with_a_port_when_it_starts_then_the_banner_names_that_port(served: Served):
    assert f"http://127.0.0.1:{served.port}/graphql" in served.banner
    assert ":8000/" not in served.banner


def test_given_a_client_that_writes_its_whole_oversized_body_first_when_it_reads_then_it_gets_413(
    served: Served,
):
    body = b"{" + b" " * (4 * 1024 * 1024) + b"}"
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()

    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as connection:
        connection.sendall(head + body)  # before reading anything, as many clients do
        response = b""
        while chunk := connection.recv(65536):
            response += chunk

    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b"larger than 1 MiB" in response
