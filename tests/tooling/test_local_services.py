"""The throwaway PostgreSQL / Redis servers used by tests, CI and local clusters."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
import redis

from tests.support.local_services import (
    PostgresServer,
    RedisServer,
    find_free_port,
    find_postgres_bindir,
    find_redis_server,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def require_postgres() -> None:
    if find_postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) not installed")


def require_redis() -> None:
    if find_redis_server() is None:
        pytest.skip("redis-server not installed")


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_find_free_port_can_be_bound() -> None:
    port = find_free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.anyio
async def test_postgres_server_accepts_connections_and_cleans_up() -> None:
    require_postgres()
    server = PostgresServer()
    server.start()
    try:
        assert server.url == f"postgres://postgres@127.0.0.1:{server.port}/licenses"
        conn = await asyncpg.connect(server.url)
        try:
            assert await conn.fetchval("SELECT current_database()") == "licenses"
            assert await conn.fetchval("SHOW fsync") == "off"
        finally:
            await conn.close()

        isolated = server.create_database("isolated_db")
        conn = await asyncpg.connect(isolated)
        try:
            assert await conn.fetchval("SELECT current_database()") == "isolated_db"
        finally:
            await conn.close()
        directory, pid = server.directory, server.pid
        assert directory.is_dir()
        assert pid is not None
    finally:
        server.stop()
    assert not server.running
    assert not directory.exists()
    assert process_gone(pid)
    server.stop()  # idempotent


def test_redis_server_answers_ping_and_restarts_on_the_same_port() -> None:
    require_redis()
    with RedisServer() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        port, pid, directory = server.port, server.pid, server.directory

        server.restart()

        assert server.port == port
        assert server.pid != pid
        assert redis.Redis.from_url(server.url).ping()
    assert not server.running
    assert not directory.exists()


def test_redis_data_survive_restart_only_with_appendonly() -> None:
    require_redis()
    with RedisServer(appendonly=True) as server:
        redis.Redis.from_url(server.url).set("key", "kept")
        server.restart()
        assert redis.Redis.from_url(server.url).get("key") == b"kept"

        server.appendonly = False
        server.restart()
        redis.Redis.from_url(server.url).set("key", "lost")
        server.restart()
        assert redis.Redis.from_url(server.url).get("key") is None


def test_env_command_prints_urls_and_stops_on_sigterm() -> None:
    require_postgres()
    require_redis()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.local_services", "env"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(2)]
        urls = dict(line.split("=", 1) for line in lines)
        assert set(urls) == {"TEST_POSTGRES_URL", "TEST_REDIS_URL"}, lines
        assert redis.Redis.from_url(urls["TEST_REDIS_URL"]).ping()
        ports = [int(url.rsplit(":", 1)[1].split("/")[0]) for url in urls.values()]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    for port in ports:
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", port))


def test_the_module_runs_before_any_virtualenv_exists() -> None:
    """.ci/run calls `python3 -m tests.support.local_services` with the system interpreter:
    importing it (and the packages above it) must need nothing beyond the standard library."""
    probe = (
        "import sys, tests.support.local_services; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names))"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe],  # -S: no site-packages
        cwd=REPO_ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outside_stdlib = ["__main__", "tests", "tests.support", "tests.support.local_services"]
    assert result.stdout.strip() == str(outside_stdlib)
