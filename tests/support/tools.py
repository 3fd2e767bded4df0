"""Outside tools some tests need (Chromium, Node with the npm packages of tests/node).

A missing tool fails the test in CI (CI=true: .ci/run installs them, so a
missing one is a broken pipeline) and skips it, with the reason, elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
CHROMIUM = Path("/usr/bin/chromium")
# Chromium's options for a container without a desktop (LIBRARY-NOTES).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{reason} (CI must provide it: see .ci/run)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> Path:
    """Debian's chromium; Playwright's own browser downloads are never used."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"{CHROMIUM} not installed (apt-get install chromium)")
    try:
        import playwright  # noqa: F401, PLC0415
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    return CHROMIUM


def node_binary() -> str:
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        unavailable("node and npm are not installed")
    return node


def node_modules_current() -> bool:
    """node_modules installed by `npm ci` from the current lockfile."""
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    lockfile = NODE_DIR / "package-lock.json"
    return marker.is_file() and marker.stat().st_mtime >= lockfile.stat().st_mtime


def ensure_node_modules() -> Path:
    """tests/node/node_modules, installed with `npm ci` when missing or older
    than package-lock.json."""
    node_binary()
    if not node_modules_current():
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0 or not node_modules_current():
            unavailable(f"npm ci failed in {NODE_DIR}: {result.stderr[-1500:]}")
    return NODE_DIR / "node_modules"


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
