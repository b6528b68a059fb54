"""DOCUMENTS_* settings: working defaults when embedded, fail fast when distributed."""

from __future__ import annotations

import pytest
from ambito_common.settings import SettingsError
from ambito_common.testing import REPO_ROOT
from documents.settings import Settings

DATA_DIR = str(REPO_ROOT / "data" / "ambiti" / "vsssc")


def test_embedded_defaults_live_under_var(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings.from_env({"AMBITO_VAR_DIR": str(tmp_path), "AMBITO_DATA_DIR": DATA_DIR})
    assert settings.database_url == f"sqlite:///{tmp_path / 'documents.sqlite3'}"
    assert settings.storage_dir == tmp_path / "documents"
    assert settings.pki_dir == tmp_path / "pki"
    assert settings.seal_p12_file == tmp_path / "pki" / "seal.p12"
    assert settings.seal_p12_password
    assert settings.seal_trust_file == tmp_path / "pki" / "ca.pem"
    assert settings.tsa_url is None
    assert settings.message_from == "protocollo@pec.comune.clusone.bg.it"
    assert settings.delivery_backend == "inbox"


def test_distributed_mode_needs_the_seal_and_its_trust_root(tmp_path) -> None:  # type: ignore[no-untyped-def]
    environ = {"AMBITO_MODE": "distributed", "AMBITO_VAR_DIR": str(tmp_path), "AMBITO_DATA_DIR": DATA_DIR,
               "AMBITO_BROKER_URL": "redis://127.0.0.1:6379/0", "AMBITO_SMTP_URL": "smtp://127.0.0.1:25",
               "DOCUMENTS_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1/documents"}
    with pytest.raises(SettingsError, match="DOCUMENTS_SEAL_P12_FILE"):
        Settings.from_env(environ)
    environ |= {"DOCUMENTS_SEAL_P12_FILE": "/run/secrets/seal.p12"}
    with pytest.raises(SettingsError, match="DOCUMENTS_SEAL_P12_PASSWORD"):
        Settings.from_env(environ)
    environ |= {"DOCUMENTS_SEAL_P12_PASSWORD": "secret"}
    with pytest.raises(SettingsError, match="DOCUMENTS_SEAL_TRUST_FILE"):
        Settings.from_env(environ)
    environ |= {"DOCUMENTS_SEAL_TRUST_FILE": "/run/secrets/ca.pem", "DOCUMENTS_TSA_URL": "https://tsa.example.it",
                "DOCUMENTS_MESSAGE_FROM": "istanze@pec.example.it"}
    settings = Settings.from_env(environ)
    assert (settings.tsa_url, settings.message_from) == ("https://tsa.example.it", "istanze@pec.example.it")


def test_unknown_delivery_backend_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SettingsError, match="DOCUMENTS_DELIVERY_BACKEND"):
        Settings.from_env({"AMBITO_VAR_DIR": str(tmp_path), "AMBITO_DATA_DIR": DATA_DIR,
                           "DOCUMENTS_DELIVERY_BACKEND": "carrier-pigeon"})


def test_pec_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = {"AMBITO_VAR_DIR": str(tmp_path), "AMBITO_DATA_DIR": DATA_DIR}
    settings = Settings.from_env({**base, "DOCUMENTS_PEC_SMTP_URL": "smtps://u:p@pec.example.it:465",
                                  "DOCUMENTS_PEC_FROM": "istanze@pec.example.it",
                                  "DOCUMENTS_MESSAGE_FROM": "ignorato@pec.example.it"})
    assert (settings.delivery_backend, settings.pec_smtp_url) == ("pec", "smtps://u:p@pec.example.it:465")
    assert settings.message_from == "istanze@pec.example.it"
    assert settings.seal_signer == "pkcs12"
    with pytest.raises(SettingsError, match="DOCUMENTS_PEC_SMTP_URL"):
        Settings.from_env({**base, "DOCUMENTS_DELIVERY_BACKEND": "pec"})
    with pytest.raises(SettingsError, match="DOCUMENTS_SEAL_SIGNER"):
        Settings.from_env({**base, "DOCUMENTS_SEAL_SIGNER": "hsm-che-non-esiste"})
