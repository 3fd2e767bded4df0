"""Settings of the web-client layer: CORS_ALLOWED_ORIGINS, PERSISTED_QUERIES(_MANIFEST)."""

import pytest

from api.settings import ApiSettings
from domain.settings import SettingsError

PRODUCTION = {"ENVIRONMENT": "production", "SECRET_KEY": "x" * 40}


def test_given_no_origins_when_read_then_only_the_same_origin_is_served():
    settings = ApiSettings.from_env({})

    assert settings.cors_allowed_origins == ()
    assert settings.persisted_queries == "apq"
    assert settings.persisted_queries_manifest is None


def test_given_a_comma_separated_list_when_read_then_each_exact_origin_is_kept():
    settings = ApiSettings.from_env(
        {"CORS_ALLOWED_ORIGINS": " https://console.example.com ,http://127.0.0.1:5173,"}
    )

    assert settings.cors_allowed_origins == ("https://console.example.com", "http://127.0.0.1:5173")


def test_given_a_wildcard_in_production_when_started_then_the_variable_is_named():
    with pytest.raises(SettingsError) as refused:
        ApiSettings.from_env({**PRODUCTION, "CORS_ALLOWED_ORIGINS": "*"})

    assert refused.value.variable == "CORS_ALLOWED_ORIGINS"
    assert "production" in str(refused.value)


def test_given_a_wildcard_in_development_when_started_then_any_origin_is_allowed():
    assert ApiSettings.from_env({"CORS_ALLOWED_ORIGINS": "*"}).cors_allowed_origins == ("*",)


@pytest.mark.parametrize(
    "value",
    [
        "console.example.com",
        "https://console.example.com/",
        "https://console.example.com/app",
        "https://*.example.com",
        "ftp://console.example.com",
        "https://Console.example.com",
        "https://console.example.com:99999",
        "*, https://console.example.com",
    ],
)
def test_given_something_that_is_not_an_exact_origin_when_read_then_it_is_refused(value):
    with pytest.raises(SettingsError) as refused:
        ApiSettings.from_env({"CORS_ALLOWED_ORIGINS": value})

    assert refused.value.variable == "CORS_ALLOWED_ORIGINS"


def test_given_an_unknown_persisted_query_mode_when_read_then_it_is_refused():
    with pytest.raises(SettingsError) as refused:
        ApiSettings.from_env({"PERSISTED_QUERIES": "sometimes"})

    assert refused.value.variable == "PERSISTED_QUERIES"


def test_given_a_missing_manifest_file_when_read_then_it_is_refused(tmp_path):
    with pytest.raises(SettingsError) as refused:
        ApiSettings.from_env({"PERSISTED_QUERIES_MANIFEST": str(tmp_path / "none.json")})

    assert refused.value.variable == "PERSISTED_QUERIES_MANIFEST"


def test_given_allowlist_and_a_manifest_when_read_then_both_are_kept(tmp_path):
    manifest = tmp_path / "ops.json"
    manifest.write_text("{}")

    settings = ApiSettings.from_env(
        {"PERSISTED_QUERIES": "Allowlist", "PERSISTED_QUERIES_MANIFEST": str(manifest)}
    )

    assert settings.persisted_queries == "allowlist"
    assert settings.persisted_queries_manifest == manifest
