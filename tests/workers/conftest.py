"""Real components for the delivery tests: an SMTP server (tests/support/smtp.py, aiosmtpd)
on loopback, Redis (tests/support/local_services.py), a log file for Dramatiq worker
processes (tests/support/delivery.py), and a clock at the real time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.clock import SYSTEM_CLOCK, FixedClock
from tests.support.local_services import RedisServer, find_redis_server
from tests.support.smtp import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def real_now_clock() -> FixedClock:
    """A test clock at the real time: rows must be due for other processes too."""
    return FixedClock(SYSTEM_CLOCK.now())


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if find_redis_server() is None:
        pytest.skip("redis-server not installed")
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def worker_log(tmp_path: Path) -> Path:
    return tmp_path / "worker.log"
