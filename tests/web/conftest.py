"""Live servers, pages on other loopback origins, and the outside tools (Chromium, Node).

Session-wide: one account (`licenses account create --json`), and two servers
started side by side from copies of its database: "cors" allows the page
origin ALLOWED_SITE serves from, "default" has no CORS setting. Two static
sites on their own ports give pages two origins other than the API's. The
helpers behind them live in tests/support/ (live_server, static_site, tools).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live_server import Account, LiveServer, create_account, start_servers
from tests.support.static_site import StaticSite
from tests.support.tools import ensure_node_modules


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
