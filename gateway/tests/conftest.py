"""Fixtures of the gateway suite: a migrated SQLite gateway under tmp_path with the demo accounts."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ambito_common.db import session_scope
from ambito_common.identity import TokenVerifier
from ambito_common.testing import REPO_ROOT, free_port
from flask import Flask
from flask.testing import FlaskClient
from gateway.app import create_app
from gateway.runtime import Runtime
from gateway.services import seed_demo_accounts
from gateway.settings import Settings
from werkzeug.test import TestResponse

DATA_DIR = REPO_ROOT / "data" / "ambiti" / "vsssc"
DEMO_PASSWORD = "demo"


def _environ(var_dir: Path, **overrides: str) -> dict[str, str]:
    closed = f"http://127.0.0.1:{free_port()}"
    return {
        "AMBITO_MODE": "embedded",
        "AMBITO_VAR_DIR": str(var_dir),
        "AMBITO_DATA_DIR": str(DATA_DIR),
        "AMBITO_DEMO": "true",
        "AMBITO_DEMO_PASSWORD": DEMO_PASSWORD,
        "GATEWAY_SERVICE_URLS": f"intake={closed},vouchers={closed},documents={closed}",
        **overrides,
    }


def _build(environ: dict[str, str]) -> Runtime:
    runtime = Runtime.build(Settings.from_env(environ))
    runtime.migrate()
    with session_scope(runtime.session_factory) as session:
        seed_demo_accounts(session, runtime.settings.platform.demo_password,
                           platform=runtime.settings.platform)
    return runtime


@pytest.fixture
def gateway_environ(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """An embedded-mode environment under tmp_path; services point at a closed port unless overridden."""
    return lambda **overrides: _environ(tmp_path / "var", **overrides)


@pytest.fixture
def gateway_build() -> Callable[[dict[str, str]], Runtime]:
    """Runtime from an environment, with its database migrated and the demo accounts seeded."""
    return _build


@pytest.fixture(scope="session")
def gateway_seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, seeded gateway database, built once: argon2 costs about half a second a hash here."""
    var_dir = tmp_path_factory.mktemp("gateway-seed") / "var"
    _build(_environ(var_dir)).session_factory.kw["bind"].dispose()  # checkpoints the WAL into the file
    return var_dir / "gateway.sqlite3"


@pytest.fixture
def gateway_runtime(gateway_environ, gateway_seeded_sqlite: Path) -> Runtime:  # type: ignore[no-untyped-def]
    environ = gateway_environ()
    database = Path(environ["AMBITO_VAR_DIR"]) / "gateway.sqlite3"
    database.parent.mkdir(parents=True)
    shutil.copyfile(gateway_seeded_sqlite, database)
    runtime = Runtime.build(Settings.from_env(environ))
    runtime.migrate()
    return runtime


@pytest.fixture
def gateway_app(gateway_runtime: Runtime) -> Flask:
    return create_app(runtime=gateway_runtime)


@pytest.fixture
def gateway_client(gateway_app: Flask) -> Iterator[FlaskClient]:
    with gateway_app.test_client() as client:
        yield client


@pytest.fixture
def gateway_verifier(gateway_runtime: Runtime) -> TokenVerifier:
    """Verifies tokens the way every service does: with the public key only."""
    return TokenVerifier(gateway_runtime.settings.platform.identity_public_key_file.read_bytes())


@pytest.fixture
def gateway_login() -> Callable[..., TestResponse]:
    """Log in through the JSON API, as a script or the browser's fetch would."""

    def login(client: FlaskClient, username: str, password: str = DEMO_PASSWORD) -> TestResponse:
        return client.post("/auth/login", json={"username": username, "password": password})

    return login
