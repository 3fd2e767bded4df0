"""Real delivery for the worker tests: Dramatiq worker processes on the test database, and
waiting, without blocking the event loop, for what they do."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.support.database import TEST_SECRET_KEY

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLIC_URL = "http://licenses.test"


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
        # The test process's key, so links match hashes.
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
