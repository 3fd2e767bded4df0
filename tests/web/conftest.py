"""Live servers, pages on other loopback origins, and the outside tools (Chromium, Node).

Session-wide: one account (`licenses account create --json`), and two servers
started side by side from copies of its database: "cors" allows the page
origin ALLOWED_SITE serves from, "default" has no CORS setting. Two static
sites on their own ports give pages two origins other than the API's.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deploy.local_services import LOOPBACK
from tests.support.live_server import Account, LiveServer, create_account, start_servers
from tests.support.tools import NODE_DIR, ensure_node_modules, node_binary

PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another origin</title></head>
<body><p>A page served from another origin than the API.</p></body></html>
"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StaticSite:
    """One page, on a loopback port of its own (hence its own origin)."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer((LOOPBACK, 0), _PageHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://{LOOPBACK}:{self.server.server_address[1]}"

    def start(self) -> StaticSite:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def sites() -> Iterator[dict[str, StaticSite]]:
    started = {"allowed": StaticSite().start(), "foreign": StaticSite().start()}
    yield started
    for site in started.values():
        site.stop()


@pytest.fixture(scope="session")
def web_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web")


@pytest.fixture(scope="session")
def account(web_dir: Path) -> Account:
    return create_account(web_dir / "account")


@pytest.fixture(scope="session")
def servers(
    web_dir: Path, account: Account, sites: dict[str, StaticSite]
) -> Iterator[dict[str, LiveServer]]:
    started = start_servers(
        web_dir,
        account,
        {"cors": {"CORS_ALLOWED_ORIGINS": sites["allowed"].origin}, "default": {}},
    )
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture(scope="session")
def node_modules() -> Path:
    return ensure_node_modules()


def run_node(script: str, *args: str, token: str, timeout: float = 180) -> dict[str, Any]:
    """Run tests/node/SCRIPT; its one line of JSON on standard output."""
    result = subprocess.run(
        [node_binary(), script, *args],
        cwd=NODE_DIR,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LICENSES_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"node {script} failed:\n{result.stderr[-3000:]}"
    output: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return output
