"""The vouchers service skeleton: it migrates, answers its health check and publishes its API description."""

from __future__ import annotations

import pytest
from ambito_common.identity import ensure_keypair
from ambito_common.testing import REPO_ROOT
from sqlalchemy import inspect
from vouchers.app import create_app
from vouchers.runtime import Runtime
from vouchers.settings import Settings


def _settings(tmp_path, **extra: str) -> Settings:
    ensure_keypair(tmp_path / "keys" / "identity.pem", tmp_path / "keys" / "identity.pub.pem")
    return Settings.from_env({"AMBITO_VAR_DIR": str(tmp_path),
                              "AMBITO_DATA_DIR": str(REPO_ROOT / "data" / "ambiti" / "vsssc"),
                              **extra})


def _check(runtime: Runtime) -> None:
    runtime.migrate()  # again for an already migrated runtime: a no-op
    assert "outbox" in inspect(runtime.session_factory.kw["bind"]).get_table_names()
    client = create_app(runtime=runtime).test_client()
    health = client.get("/api/vouchers/health")
    assert health.status_code == 200
    assert health.get_json() == {"status": "ok", "service": "vouchers"}
    spec = client.get("/api/vouchers/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")


def test_vouchers_skeleton_on_sqlite(tmp_path):
    _check(Runtime.build(_settings(tmp_path)))


@pytest.mark.postgres
def test_vouchers_skeleton_on_postgres(vouchers_pg_runtime):
    _check(vouchers_pg_runtime)


def test_vouchers_distributed_mode_refuses_a_missing_database(tmp_path):
    from ambito_common.settings import SettingsError

    with pytest.raises(SettingsError, match="VOUCHERS_DATABASE_URL"):
        _settings(tmp_path, AMBITO_MODE="distributed", AMBITO_BROKER_URL="redis://127.0.0.1:6379/0",
                  AMBITO_SMTP_URL="smtp://127.0.0.1:25")
