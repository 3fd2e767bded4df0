"""Tests that need Chromium or Node fail in CI when the tool is missing, and skip elsewhere."""

import os

import pytest

from tests.support import tools


def test_given_ci_when_a_tool_is_missing_then_the_test_fails(monkeypatch):
    monkeypatch.setenv("CI", "true")

    with pytest.raises(pytest.fail.Exception, match="CI must provide it"):
        tools.unavailable("chromium not installed")


def test_given_a_developer_machine_when_a_tool_is_missing_then_the_test_skips_with_the_reason(
    monkeypatch,
):
    monkeypatch.delenv("CI", raising=False)

    with pytest.raises(pytest.skip.Exception, match="chromium not installed"):
        tools.unavailable("chromium not installed")


def test_given_node_modules_older_than_the_lockfile_when_checked_then_npm_ci_is_due(
    monkeypatch, tmp_path
):
    (tmp_path / "node_modules").mkdir()
    marker = tmp_path / "node_modules" / ".package-lock.json"
    lockfile = tmp_path / "package-lock.json"
    marker.write_text("{}")
    lockfile.write_text("{}")
    monkeypatch.setattr(tools, "NODE_DIR", tmp_path)
    os.utime(marker, (1_000, 1_000))
    os.utime(lockfile, (2_000, 2_000))

    assert not tools.node_modules_current()
    os.utime(marker, (3_000, 3_000))
    assert tools.node_modules_current()
