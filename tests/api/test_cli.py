"""The `licenses` command as a process: configuration errors, help, account create, billing
run and migrate."""

import json

from tests.support.cli import REPO_ROOT, run_cli


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
        ["users", "import"],
    ):
        result = run_cli(*command, "--help")
        assert result.returncode == 0, command
        assert "usage: licenses" in result.stdout


def test_account_create_json_prints_exactly_one_object_and_billing_run_finds_nothing_due(
    tmp_path,
):
    env = {
        "DATABASE_URL": f"sqlite://{tmp_path / 'cli.db'}",
        "MAIL_URL": f"maildir://{tmp_path / 'mail'}",
        "SECRET_KEY": "k" * 40,
    }

    created = run_cli(
        "account",
        "create",
        "--name",
        "Acme",
        "--owner-email",
        "o@acme.example",
        "--owner-first-name",
        "Olive",
        "--owner-last-name",
        "Owner",
        "--seats",
        "3",
        "--seat-price-cents",
        "1200",
        "--interval",
        "year",
        "--current-period-end",
        "2099-01-31T00:00:00+00:00",
        "--json",
        env=env,
        cwd=tmp_path,
    )
    billing = run_cli("billing", "run", env=env, cwd=tmp_path)

    assert created.returncode == 0, created.stderr
    lines = created.stdout.strip().splitlines()
    assert len(lines) == 1
    output = json.loads(lines[0])
    assert set(output) == {"accountId", "ownerUserId", "apiToken"}
    assert output["apiToken"].startswith("lic_")
    assert billing.returncode == 0, billing.stderr
    assert "0 accounts due" in billing.stdout


def test_account_create_refusal_is_one_line_with_its_code(tmp_path):
    env = {"DATABASE_URL": f"sqlite://{tmp_path / 'cli.db'}", "SECRET_KEY": "k" * 40}

    refused = run_cli(
        "account",
        "create",
        "--name",
        "Acme",
        "--owner-email",
        "not-an-email",
        "--owner-first-name",
        "Olive",
        "--owner-last-name",
        "Owner",
        "--seats",
        "3",
        "--seat-price-cents",
        "1200",
        env=env,
        cwd=tmp_path,
    )

    assert refused.returncode == 1
    assert "INVALID_INPUT (ownerEmail)" in refused.stderr
    assert refused.stdout == ""


def test_migrate_lists_the_migrations_it_applies_then_says_none_are_pending(tmp_path):
    env = {"DATABASE_URL": f"sqlite://{tmp_path / 'cli.db'}", "SECRET_KEY": "k" * 40}
    shipped = sorted(path.stem for path in (REPO_ROOT / "domain" / "migrations").glob("[0-9]*.py"))

    first = run_cli("migrate", env=env, cwd=tmp_path)
    second = run_cli("migrate", env=env, cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        *(f"Applied models.{name}" for name in shipped),
        f"{len(shipped)} migration(s) applied.",
    ]
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == ["No migrations pending: the database is up to date."]
