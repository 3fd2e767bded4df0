"""A real `licenses serve` (uvicorn, embedded mode) on a free loopback port.

For clients that need a socket: a browser, Node programs. `create_account`
runs `licenses account create --json` once into a SQLite file; each
`LiveServer` starts on its own copy of that file, so several servers (with
different settings) share the account and its API token without running the
CLI again. `start_servers` starts several side by side.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from domain.settings import SETTINGS
from tests.support.local_services import LOOPBACK, find_free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "live-server-secret-key-" + "0123456789abcdef" * 2
# The service's own settings from the caller's environment must not leak in.
_SCRUBBED = frozenset({s.name for s in SETTINGS} | {"FORWARDED_ALLOW_IPS", "WEB_CONCURRENCY"})


def server_env(work_dir: Path, database: Path, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    env.update(
        ENVIRONMENT="development",
        DATABASE_URL=f"sqlite://{database}",
        MAIL_URL=f"maildir://{work_dir / 'mail'}",
        SECRET_KEY=SECRET_KEY,
        DEMO_ACCOUNT="false",
        LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


@dataclass(frozen=True)
class Account:
    database: Path
    account_id: str
    owner_user_id: str
    api_token: str


def create_account(work_dir: Path, *, seats: int = 10, price_cents: int = 1200) -> Account:
    """A migrated SQLite file holding one account (`licenses account create --json`)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "account.db"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "api.cli",
            "account",
            "create",
            "--name",
            "Web Clients",
            "--owner-email",
            "owner@web.example",
            "--owner-first-name",
            "Wendy",
            "--owner-last-name",
            "Web",
            "--seats",
            str(seats),
            "--seat-price-cents",
            str(price_cents),
            "--json",
        ],
        cwd=work_dir,
        env=server_env(work_dir, database),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise RuntimeError(f"licenses account create failed: {result.stderr[-2000:]}")
    created = json.loads(result.stdout)
    return Account(
        database=database,
        account_id=created["accountId"],
        owner_user_id=created["ownerUserId"],
        api_token=created["apiToken"],
    )


class LiveServer:
    """`python -m api.cli serve` in its own process group; `stop()` ends it."""

    def __init__(
        self, work_dir: Path, account: Account, database: Path | None = None, /, **settings: str
    ) -> None:
        """`database`: run on that file (another server's, to share it) instead of a copy."""
        work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir = work_dir
        self.account = account
        self.port = find_free_port()
        if database is None:
            database = work_dir / "live.db"
            shutil.copyfile(account.database, database)
        self.database = database
        self.log_path = work_dir / "server.log"
        self.env = server_env(
            work_dir, self.database, PUBLIC_URL=self.base_url, PORT=str(self.port), **settings
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    @property
    def token(self) -> str:
        return self.account.api_token

    def start(self, timeout: float = 60.0) -> Self:
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "serve", "--host", LOOPBACK],
                cwd=self.work_dir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> Self:
        assert self.process is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log()[-3000:]}")
            if answers_ready(f"{self.base_url}/readyz"):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready within {timeout}s: {self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def answers_ready(url: str) -> bool:
    """Whether a readiness URL (`/readyz`) answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def start_servers(
    work_dir: Path, account: Account, configs: Mapping[str, Mapping[str, str]]
) -> dict[str, LiveServer]:
    """One server per named settings mapping, started side by side; all or none
    (on a failure the others are stopped)."""
    servers = {
        name: LiveServer(work_dir / name, account, **settings) for name, settings in configs.items()
    }
    try:
        for server in servers.values():
            server.spawn()
        for server in servers.values():
            server.wait_ready()
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers
