"""Real components for the delivery tests: an SMTP server (aiosmtpd) on
loopback, Redis (deploy.local_services), and Dramatiq worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from deploy.local_services import RedisServer, find_redis_server
from domain.clock import SYSTEM_CLOCK, FixedClock
from tests.conftest import TEST_SECRET_KEY
from workers.mailer import SmtpMailer

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLIC_URL = "http://licenses.test"
TOKEN_LINK = re.compile(r"http://licenses\.test/accept-invitation\?token=([A-Za-z0-9_-]+)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------
# SMTP


@dataclass
class Received:
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        assert isinstance(body, EmailMessage)
        return str(body.get_content())

    @property
    def token(self) -> str:
        found = TOKEN_LINK.search(self.text)
        assert found, self.text
        return found.group(1)


@dataclass
class SinkHandler:
    """aiosmtpd hooks: records every message; refuses chosen recipients;
    can answer slowly (to catch a worker in the middle of a batch)."""

    refusals: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    sessions: int = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refusals:
            return self.refusals[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=policy.default).parsebytes(bytes(envelope.content))
        assert isinstance(message, EmailMessage)
        # Recorded when the whole message is here: from now on it counts as
        # delivered, whether or not the client lives to read the reply.
        self.received.append(Received(list(envelope.rcpt_tos), message))
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, handler: SinkHandler | None = None, port: int | None = None) -> None:
        self.handler = handler or SinkHandler()
        self.port = port or free_port()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def message_ids(self) -> Counter[str]:
        return Counter(received.message_id for received in self.received)

    def mailer(self) -> SmtpMailer:
        return SmtpMailer("127.0.0.1", self.port, timeout=5)

    def start(self) -> SmtpServer:
        if self._controller is None:
            self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
            self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], *, within: float, what: str
) -> float:
    """Poll until `predicate` holds; return the seconds it took."""
    started = time.monotonic()
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def real_now_clock() -> FixedClock:
    """A test clock at the real time: rows must be due for other processes too."""
    return FixedClock(SYSTEM_CLOCK.now())


# ---------------------------------------------------------------------------
# Redis and worker processes


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if find_redis_server() is None:
        pytest.skip("redis-server not installed")
    server = RedisServer().start()
    yield server
    server.stop()


def worker_environment(
    *, database_url: str, redis_url: str, mail_url: str, **extra: str
) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        PYTHONUNBUFFERED="1",
        ENVIRONMENT="development",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        MAIL_URL=mail_url,
        PUBLIC_URL=PUBLIC_URL,
        # The test process's key (tests/conftest.py), so links match hashes.
        SECRET_KEY=TEST_SECRET_KEY.decode("ascii"),
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


class WorkerProcess:
    """`python -m workers.worker_main` in its own process group."""

    READY = "Worker process is ready for action"

    def __init__(self, env: dict[str, str], log_path: Path, *, threads: int = 4) -> None:
        self.env = env
        self.log_path = log_path
        self.threads = threads
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "workers.worker_main", "-p", "1", "-t", str(self.threads)],
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while self.READY not in self.log()[offset:]:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not ready after {timeout}s:\n{self.log()}")
            time.sleep(0.05)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL to the whole group: no clean-up of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM (graceful), then SIGKILL if it lingers."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            # To dramatiq's main process only: it forwards the signal to its
            # workers, and a worker that gets a second SIGTERM exits at once.
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        # Children left behind by a killed parent.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode


@pytest.fixture
def worker_log(tmp_path: Path) -> Path:
    return tmp_path / "worker.log"
