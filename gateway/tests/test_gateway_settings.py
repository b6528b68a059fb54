"""Gateway settings: embedded defaults that run, distributed mode that fails fast."""

from __future__ import annotations

import pytest
from ambito_common.settings import SettingsError
from gateway.settings import Settings


def test_embedded_generates_its_secrets_once(gateway_environ):
    first = Settings.from_env(gateway_environ())
    second = Settings.from_env(gateway_environ())

    assert first.secret_key == second.secret_key and len(first.secret_key) >= 48
    assert first.identity_private_key_file.name == "identity.pem"
    assert first.identity_private_key_file.stat().st_mode & 0o077 == 0
    assert first.platform.identity_public_key_file.is_file()
    assert first.database_url.endswith("/var/gateway.sqlite3")
    assert (first.token_ttl_seconds, first.session_hours) == (600, 8)


def test_embedded_service_urls_default_to_the_public_url(gateway_environ):
    environ = gateway_environ(AMBITO_PUBLIC_URL="http://127.0.0.1:9000/")
    del environ["GATEWAY_SERVICE_URLS"]

    assert Settings.from_env(environ).service_urls == {
        "intake": "http://127.0.0.1:9000", "vouchers": "http://127.0.0.1:9000",
        "documents": "http://127.0.0.1:9000"}


def _distributed(tmp_path, **overrides: str) -> dict[str, str]:
    key = tmp_path / "identity.pem"
    key.write_text("mounted secret")
    return {"AMBITO_MODE": "distributed", "AMBITO_VAR_DIR": str(tmp_path / "var"),
            "AMBITO_BROKER_URL": "redis://127.0.0.1:6379/0", "AMBITO_SMTP_URL": "smtp://127.0.0.1:25",
            "GATEWAY_DATABASE_URL": "postgresql+psycopg://gateway@db/gateway",
            "GATEWAY_SECRET_KEY": "s" * 48, "GATEWAY_IDENTITY_PRIVATE_KEY_FILE": str(key),
            "GATEWAY_SERVICE_URLS": "intake=http://intake:8000,vouchers=http://vouchers:8000/,"
                                    "documents=http://documents:8000",
            **overrides}


def test_distributed_reads_everything_from_the_environment(tmp_path):
    settings = Settings.from_env(_distributed(tmp_path, GATEWAY_TOKEN_TTL_SECONDS="300"))

    assert settings.service_urls["vouchers"] == "http://vouchers:8000"
    assert settings.token_ttl_seconds == 300
    assert not (tmp_path / "var" / "keys").exists()


@pytest.mark.parametrize("missing", ["GATEWAY_SECRET_KEY", "GATEWAY_SERVICE_URLS", "GATEWAY_DATABASE_URL"])
def test_distributed_stops_on_a_missing_setting(tmp_path, missing):
    environ = _distributed(tmp_path)
    del environ[missing]

    with pytest.raises(SettingsError, match=missing):
        Settings.from_env(environ)


def test_distributed_stops_on_a_missing_private_key(tmp_path):
    with pytest.raises(SettingsError, match="IDENTITY_PRIVATE_KEY_FILE"):
        Settings.from_env(_distributed(tmp_path, GATEWAY_IDENTITY_PRIVATE_KEY_FILE=str(tmp_path / "no.pem")))


@pytest.mark.parametrize("urls", ["intake=http://a", "intake=http://a,vouchers=http://b,documents",
                                  "intake=http://a,vouchers=http://b,documents=http://c,extra=http://d"])
def test_service_urls_must_name_each_service_once(tmp_path, urls):
    with pytest.raises(SettingsError, match="GATEWAY_SERVICE_URLS"):
        Settings.from_env(_distributed(tmp_path, GATEWAY_SERVICE_URLS=urls))
