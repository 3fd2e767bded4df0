import re
from pathlib import Path

import pytest

from api.settings import API_SETTINGS, ApiSettings, public_url_for
from domain.settings import SETTINGS, Settings, SettingsError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_are_the_embedded_development_mode():
    settings = Settings.from_env({})
    api_settings = ApiSettings.from_env({})

    assert settings.environment == "development"
    assert settings.embedded
    assert settings.database_url == "sqlite://var/licenses.db"
    assert settings.mail_url == "maildir://var/mail"
    assert api_settings.graphiql and api_settings.introspection
    assert settings.log_format == "text"
    assert settings.invitation_ttl.days == 7
    assert settings.session_ttl.days == 14


def test_production_turns_graphiql_and_introspection_off_and_logs_json():
    environment = {
        "ENVIRONMENT": "production",
        "DATABASE_URL": "postgres://u:p@db:5432/licenses",
        "REDIS_URL": "redis://redis:6379/0",
        "SECRET_KEY": "x" * 40,
    }
    settings = Settings.from_env(environment)
    api_settings = ApiSettings.from_env(environment)

    assert not api_settings.graphiql and not api_settings.introspection
    assert settings.log_format == "json"
    assert not settings.embedded
    assert not settings.demo_account


def test_introspection_can_be_switched_on_in_production():
    settings = ApiSettings.from_env(
        {"ENVIRONMENT": "production", "SECRET_KEY": "x" * 40, "INTROSPECTION": "true"}
    )

    assert settings.introspection


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "nonsense://"),
        ("DATABASE_URL", "postgres://"),
        ("DATABASE_URL", "sqlite://"),
        ("MAIL_URL", "ftp://mail"),
        ("MAIL_URL", "smtp://"),
        ("REDIS_URL", "http://redis"),
        ("PUBLIC_URL", "not a url"),
        ("ENVIRONMENT", "staging"),
        ("PORT", "70000"),
        ("PORT", "eighty"),
        ("GRAPHIQL", "maybe"),
        ("INVITATION_TTL_HOURS", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
        ("SECRET_KEY", "short"),
    ],
)
def test_a_bad_value_names_its_variable(variable, value):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({variable: value})
        ApiSettings.from_env({variable: value})

    assert refused.value.variable == variable
    assert str(refused.value).startswith(f"{variable}: ")


def test_production_requires_a_secret_key():
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"ENVIRONMENT": "production"})

    assert refused.value.variable == "SECRET_KEY"


def test_the_readme_documents_every_setting_with_its_default():
    table_rows = {
        match.group(1): match.group(2).strip()
        for match in re.finditer(r"^\| `([A-Z_]+)` \| ([^|]*)\|", README.read_text(), re.M)
    }

    for setting in (*SETTINGS, *API_SETTINGS):
        assert setting.name in table_rows, f"{setting.name} missing from the README"
        if setting.default is not None:
            assert f"`{setting.default}`" == table_rows[setting.name], setting.name


def test_a_bad_url_is_reported_without_its_password():
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"DATABASE_URL": "postgress://user:hunter2@db/x"})

    assert "hunter2" not in str(refused.value)
    assert "***" in str(refused.value)


def test_given_a_process_that_never_configured_the_domain_when_a_rule_needs_it_then_it_fails():
    from domain import config  # noqa: PLC0415

    config.configure(None)  # as a new process: the autouse fixture restores the test's

    with pytest.raises(config.NotConfigured, match="configure_domain"):
        config.current()


def test_given_ttl_settings_when_the_domain_is_configured_then_it_uses_exactly_them(tmp_path):
    from domain import config  # noqa: PLC0415
    from domain.settings import configure_domain  # noqa: PLC0415

    settings = Settings.from_env(
        {"INVITATION_TTL_HOURS": "5", "SESSION_TTL_HOURS": "9", "SECRET_KEY": "k" * 32}
    )

    configure_domain(settings)

    assert config.current().invitation_ttl.total_seconds() == 5 * 3600
    assert config.current().session_ttl.total_seconds() == 9 * 3600
    assert config.current().secret_key == b"k" * 32
    assert not hasattr(config.current(), "public_url")  # links are composed from Settings


def test_given_no_public_url_when_serving_on_a_port_then_links_follow_it_unless_configured():
    default = public_url_for(Settings.from_env({}), host="0.0.0.0", port=8765)
    configured = public_url_for(
        Settings.from_env({"PUBLIC_URL": "https://licenses.example"}), host="0.0.0.0", port=8765
    )

    assert default.public_url == "http://127.0.0.1:8765"
    assert configured.public_url == "https://licenses.example"
