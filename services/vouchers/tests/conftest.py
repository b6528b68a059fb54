"""Fixtures of the vouchers suite: a real app on a SQLite file under tmp_path with the demo data,
and signed identity tokens for each role."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ambito_common.db import session_scope
from ambito_common.identity import AMBITO_ADMIN, Identity, TokenIssuer, ensure_keypair
from ambito_common.testing import REPO_ROOT, fresh_postgres_database
from flask import Flask
from flask.testing import FlaskClient
from vouchers.app import create_app
from vouchers.reference_data import load_demo_data
from vouchers.runtime import Runtime, worker_runtime
from vouchers.settings import Settings
from werkzeug.test import TestResponse

DATA_DIR = REPO_ROOT / "data" / "ambiti" / "vsssc"
TODAY = dt.date(2026, 11, 21)


def vouchers_write(client: FlaskClient, headers: dict[str, str], path: str, body: Any = None,
                   **kwargs: Any) -> TestResponse:
    """A write as an API client sends it, with a fresh ``Idempotency-Key``; ``body``: its JSON."""
    if body is not None:
        kwargs["json"] = body
    return client.post(path, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, **kwargs)


def vouchers_written(client: FlaskClient, headers: dict[str, str], path: str, body: Any = None,
                     **kwargs: Any) -> Any:
    """A :func:`vouchers_write` that must succeed; its JSON answer."""
    response = vouchers_write(client, headers, path, body, **kwargs)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def vouchers_settings(tmp_path: Path, **extra: str) -> Settings:
    keys = tmp_path / "keys"
    ensure_keypair(keys / "identity.pem", keys / "identity.pub.pem")
    return Settings.from_env({"AMBITO_VAR_DIR": str(tmp_path / "var"), "AMBITO_DATA_DIR": str(DATA_DIR),
                              "AMBITO_IDENTITY_PUBLIC_KEY_FILE": str(keys / "identity.pub.pem"), **extra})


def vouchers_demo_runtime(settings: Settings) -> Runtime:
    runtime = Runtime.build(settings)
    runtime.migrate()
    with session_scope(runtime.session_factory) as session:
        load_demo_data(session, DATA_DIR, TODAY)
    return runtime


@pytest.fixture
def vouchers_make_runtime(tmp_path: Path) -> Callable[..., Runtime]:
    """A migrated runtime with the demo data; keyword arguments are extra environment variables."""
    return lambda **extra: vouchers_demo_runtime(vouchers_settings(tmp_path, **extra))


@pytest.fixture
def vouchers_runtime(tmp_path: Path) -> Runtime:
    return vouchers_demo_runtime(vouchers_settings(tmp_path))


@pytest.fixture
def vouchers_pg_runtime(vouchers_make_runtime: Callable[..., Runtime]) -> Iterator[Runtime]:
    """A migrated runtime with the demo data on a fresh PostgreSQL database, dropped afterwards.

    Without PostgreSQL the test is skipped, or fails under ``REQUIRE_SERVICES=1``.
    """
    with fresh_postgres_database("vouchers") as url:
        runtime = vouchers_make_runtime(VOUCHERS_DATABASE_URL=url)
        try:
            yield runtime
        finally:
            runtime.session_factory.kw["bind"].dispose()


@pytest.fixture
def vouchers_app(vouchers_runtime: Runtime) -> Flask:
    return create_app(runtime=vouchers_runtime)


@pytest.fixture
def vouchers_client(vouchers_app: Flask) -> FlaskClient:
    return vouchers_app.test_client()


@pytest.fixture
def vouchers_auth(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """``Authorization`` headers for a user with ``role`` (and ``comune`` for comune-bound roles)."""
    ensure_keypair(tmp_path / "keys" / "identity.pem", tmp_path / "keys" / "identity.pub.pem")
    issuer = TokenIssuer((tmp_path / "keys" / "identity.pem").read_bytes(), dt.timedelta(minutes=10))

    def auth(role: str = AMBITO_ADMIN, comune: str | None = None, user: str = "") -> dict[str, str]:
        username = user or f"{role}-{comune or 'ambito'}"
        token = issuer.issue(Identity(subject=username, username=username, roles=(role,), comune=comune))
        return {"Authorization": f"Bearer {token}"}

    return auth


@pytest.fixture
def vouchers_worker_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Reservations that expire at once, and a worker runtime built from the same environment."""
    env = {"AMBITO_VAR_DIR": str(tmp_path / "var"), "VOUCHERS_RESERVATION_TTL_DAYS": "0",
           "AMBITO_IDENTITY_PUBLIC_KEY_FILE": str(tmp_path / "keys" / "identity.pub.pem")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    worker_runtime.cache_clear()
    yield env
    worker_runtime.cache_clear()
