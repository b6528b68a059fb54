"""Test helpers shared by every service's suite.

Tests that need PostgreSQL, Redis or a program or file of the machine skip
with a reason when those are absent, and fail instead when
``REQUIRE_SERVICES=1`` (as CI sets), so a missing dependency can never turn a
red suite green (see :func:`require`).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REPO_ROOT = Path(__file__).resolve().parents[4]
SHARED_DIR = REPO_ROOT.parent / "shared"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(ok: bool, what: str) -> None:
    """Skip when ``ok`` is false, saying ``what`` is missing; fail instead under REQUIRE_SERVICES=1.

    The one gate for everything a test needs from the machine (servers, programs, files), so
    CI, which sets REQUIRE_SERVICES=1, can never go green by skipping.
    """
    if ok:
        return
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(what + " and REQUIRE_SERVICES=1")
    pytest.skip(what)


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or fail under REQUIRE_SERVICES=1) when a server is not reachable."""
    require(_reachable(host, port), f"{name} is not reachable on {host}:{port}")


def require_postgres() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)


def require_redis() -> None:
    require_service("Redis", "127.0.0.1", 6379)


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """Create an empty database for one test session; drop it afterwards. Yields its URL."""
    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def rolled_back_session(engine) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A session inside a transaction that is rolled back after the test.

    Service code may call ``session.commit()``: with ``create_savepoint`` that
    only releases a savepoint, and the outer rollback still undoes everything.
    """
    from sqlalchemy.orm import Session

    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint",
                      expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()
