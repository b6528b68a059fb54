"""``services.run_transaction`` retries what the database asks to retry, on real database errors.

PostgreSQL: the work books a reservation and then the database raises a serialization
failure (40001) or a deadlock (40P01) on the first attempts; SQLite: a second
connection holds the write lock, so the work meets a genuine "database is locked".
Each run counts the attempts and checks that a failed attempt left nothing behind.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

import pytest
from ambito_common.db import make_engine, make_session_factory
from ambito_common.errors import Conflict
from sqlalchemy import event, func, pool, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from vouchers import services
from vouchers.models import Reservation
from vouchers.runtime import Runtime

FUND, PERIOD, COMUNE, AMOUNT = "fna-b2", "2026-2027", "gromo", 1234


def _raise_sqlstate(code: str) -> str:
    return f"DO $$ BEGIN RAISE EXCEPTION 'prova' USING ERRCODE = '{code}'; END $$"


def _reserve(session: Session) -> Reservation:
    return services.reserve(session, fund_code=FUND, period_code=PERIOD, comune=COMUNE, amount=AMOUNT,
                            reference="retry", actor="test")


def _books(factory: sessionmaker[Session]) -> tuple[int, int]:
    """(reservations made, money reserved on the comune's budget)."""
    with factory() as session:
        budget = services.find_budget(session, fund_code=FUND, period_code=PERIOD, comune=COMUNE)
        return session.scalar(select(func.count(Reservation.id))), budget.reserved


def _counting(work: Callable[[int], Reservation]) -> tuple[Callable[[], Reservation], list[int]]:
    attempts: list[int] = []

    def run() -> Reservation:
        attempts.append(len(attempts) + 1)
        return work(len(attempts))

    return run, attempts


@pytest.fixture
def pg_factory(vouchers_pg_runtime: Runtime) -> sessionmaker[Session]:
    return vouchers_pg_runtime.session_factory


@pytest.mark.postgres
@pytest.mark.timeout(120)
@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_vouchers_postgres_serialization_failures_and_deadlocks_are_retried(pg_factory, sqlstate):
    def work(attempt: int) -> Reservation:
        reservation = _reserve(session)
        if attempt <= 2:
            session.execute(text(_raise_sqlstate(sqlstate)))
        return reservation

    run, attempts = _counting(work)
    with pg_factory() as session:
        reservation = services.run_transaction(session, run)
    assert attempts == [1, 2, 3]
    assert reservation.status == "reserved"
    assert _books(pg_factory) == (1, AMOUNT)  # the failed attempts were rolled back whole


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_vouchers_postgres_retries_give_up_after_the_limit_and_other_errors_are_not_retried(pg_factory):
    def always_deadlocked(_attempt: int) -> Reservation:
        _reserve(session)
        session.execute(text(_raise_sqlstate("40P01")))
        raise AssertionError("unreachable")

    run, attempts = _counting(always_deadlocked)
    with pg_factory() as session, pytest.raises(DBAPIError) as raised:
        services.run_transaction(session, run, attempts=4)
    assert attempts == [1, 2, 3, 4]
    assert services.is_transient(raised.value)

    def division_by_zero(_attempt: int) -> Reservation:
        _reserve(session)
        session.execute(text("SELECT 1 / 0"))
        raise AssertionError("unreachable")

    run, attempts = _counting(division_by_zero)
    with pg_factory() as session, pytest.raises(DBAPIError) as raised:
        services.run_transaction(session, run)
    assert attempts == [1]
    assert raised.value.orig.sqlstate == "22012"
    assert not services.is_transient(raised.value)
    assert _books(pg_factory) == (0, 0)


@pytest.fixture
def sqlite_setup(vouchers_make_runtime: Callable[..., Runtime],
                 ) -> Iterator[tuple[sessionmaker[Session], str]]:
    """Sessions whose connections wait only 50 ms for the write lock, and the database file."""
    url = vouchers_make_runtime().settings.database_url
    engine = make_engine(url, poolclass=pool.NullPool)

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    yield make_session_factory(engine), url.removeprefix("sqlite:///")
    engine.dispose()


def _writer_holding_the_lock(path: str) -> sqlite3.Connection:
    """Another process's connection in the middle of a write transaction."""
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    return blocker


@pytest.mark.timeout(60)
def test_vouchers_sqlite_database_is_locked_is_retried_until_the_writer_is_done(sqlite_setup):
    factory, path = sqlite_setup
    blocker = _writer_holding_the_lock(path)
    failures: list[str] = []

    def work(attempt: int) -> Reservation:
        if attempt == 2:  # the first attempt failed on the lock: the other writer now commits
            blocker.commit()
        return _reserve(session)

    run, attempts = _counting(work)
    with factory() as session:
        @event.listens_for(session.get_bind(), "handle_error")
        def _seen(context):  # type: ignore[no-untyped-def]
            failures.append(str(context.original_exception))

        reservation = services.run_transaction(session, run)
    blocker.close()
    assert attempts == [1, 2]
    assert failures == ["database is locked"]
    assert reservation.status == "reserved"
    assert _books(factory) == (1, AMOUNT)


@pytest.mark.timeout(60)
def test_vouchers_sqlite_gives_up_on_a_lock_never_released_and_does_not_retry_a_rule(sqlite_setup):
    factory, path = sqlite_setup
    blocker = _writer_holding_the_lock(path)
    run, attempts = _counting(lambda _attempt: _reserve(session))
    with factory() as session, pytest.raises(DBAPIError) as raised:
        services.run_transaction(session, run, attempts=3)
    blocker.rollback()
    blocker.close()
    assert attempts == [1, 2, 3]
    assert "database is locked" in str(raised.value.orig)
    assert services.is_transient(raised.value)

    def unknown_table(_attempt: int) -> Reservation:
        _reserve(session)
        session.execute(text("SELECT * FROM no_such_table"))
        raise AssertionError("unreachable")

    run, attempts = _counting(unknown_table)
    with factory() as session, pytest.raises(DBAPIError) as raised:
        services.run_transaction(session, run)
    assert attempts == [1]
    assert not services.is_transient(raised.value)

    def over_budget(_attempt: int) -> Reservation:
        _reserve(session)
        raise Conflict("regola violata")

    run, attempts = _counting(over_budget)
    with factory() as session, pytest.raises(Conflict):
        services.run_transaction(session, run)
    assert attempts == [1]
    assert _books(factory) == (0, 0)  # nothing of the failed or refused runs was kept
