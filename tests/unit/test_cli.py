import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT):
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=60,
        check=False,
    )


def test_a_wrong_database_url_fails_with_one_line_naming_the_variable(tmp_path):
    result = run_cli("migrate", env={"DATABASE_URL": "nonsense://"}, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_command_has_help():
    for command in (
        ["serve"],
        ["worker"],
        ["scheduler"],
        ["migrate"],
        ["account", "create"],
        ["billing", "run"],
    ):
        result = run_cli(*command, "--help")
        assert result.returncode == 0, command
        assert "usage: licenses" in result.stdout
