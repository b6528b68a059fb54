"""Accepting applications and numbering the register on PostgreSQL (distributed mode)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from ambito_common.db import make_engine, make_session_factory, migrate, session_scope
from ambito_common.errors import Conflict
from ambito_common.settings import platform_settings
from ambito_common.testing import fresh_postgres_database, rolled_back_session
from ambito_common.web import ROME, load_ambito
from intake import services
from intake.models import Application, OutboxMessage, RegisterCounter
from intake.reference_data import load_demo_data, load_reference_data
from intake.runtime import MIGRATIONS
from sqlalchemy import Engine, func, select

pytestmark = pytest.mark.postgres

OPEN_DAY = dt.date(2026, 12, 1)  # the demo call, loaded on this day, is open until 30/01/2027


@pytest.fixture(scope="module")
def intake_pg_engine() -> Iterator[Engine]:
    with fresh_postgres_database("intake") as url:
        migrate(MIGRATIONS, url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def intake_pg_session(intake_pg_engine, intake_data_dir):  # type: ignore[no-untyped-def]
    with rolled_back_session(intake_pg_engine) as session:
        load_reference_data(session, intake_data_dir)
        load_demo_data(session, intake_data_dir, OPEN_DAY)
        yield session


@pytest.fixture
def intake_ambito(intake_data_dir) -> dict:
    return load_ambito(platform_settings({"AMBITO_DATA_DIR": str(intake_data_dir)}))


def _payload(intake_payload, intake_tax_code, n: int) -> dict:
    payload = intake_payload()
    payload["organisation"]["tax_code"] = intake_tax_code(n)
    return payload


def test_intake_postgres_accepts_with_outbox_rows(intake_pg_session, intake_ambito, intake_payload) -> None:
    now = dt.datetime(2026, 12, 10, 10, 0, tzinfo=ROME)
    application = services.submit_application(intake_pg_session, call_slug="pdz-demo", data=intake_payload(),
                                              now=now, ambito=intake_ambito)
    intake_pg_session.commit()
    assert (application.register_year, application.register_number) == (2026, 1)
    assert application.status == "received"
    tasks = intake_pg_session.scalars(select(OutboxMessage.task_name).order_by(OutboxMessage.id)).all()
    assert tasks == ["documents.build_package", "intake.send_receipt"]
    with pytest.raises(Conflict) as caught:
        services.submit_application(intake_pg_session, call_slug="pdz-demo", data=intake_payload(), now=now,
                                    ambito=intake_ambito)
    assert caught.value.extra["tracking_code"] == application.tracking_code


def test_intake_postgres_closed_call_writes_nothing(intake_pg_session, intake_ambito, intake_payload) -> None:
    with pytest.raises(Conflict):
        services.submit_application(intake_pg_session, call_slug="pdz-2025-2027", data=intake_payload(),
                                    now=dt.datetime(2024, 10, 3, 0, 0, tzinfo=ROME), ambito=intake_ambito)
    for model in (Application, OutboxMessage, RegisterCounter):
        assert intake_pg_session.scalar(select(func.count()).select_from(model)) == 0


def test_intake_postgres_register_gapless_and_yearly(intake_pg_session, intake_ambito, intake_payload,
                                                     intake_tax_code) -> None:
    eve = dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=ROME)
    new_year = dt.datetime(2027, 1, 1, 0, 0, 0, tzinfo=ROME)
    numbers = []
    for n, moment in enumerate((eve, eve, new_year, new_year), start=1):
        application = services.submit_application(
            intake_pg_session, call_slug="pdz-demo", data=_payload(intake_payload, intake_tax_code, n),
            now=moment, ambito=intake_ambito)
        intake_pg_session.commit()
        numbers.append((application.register_year, application.register_number))
    assert numbers == [(2026, 1), (2026, 2), (2027, 1), (2027, 2)]


def test_intake_postgres_concurrent_acceptances_queue_on_the_counter(
        intake_data_dir, intake_ambito, intake_payload, intake_tax_code) -> None:
    """Committing sessions on their own connections, all at once: numbers 1..N, one per organisation."""
    with fresh_postgres_database("intake") as url:
        migrate(MIGRATIONS, url)
        engine = make_engine(url, pool_size=12)
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            load_demo_data(session, intake_data_dir, OPEN_DAY)
        now = dt.datetime(2026, 12, 10, 10, 0, tzinfo=ROME)
        # Eight different organisations, and the first one four more times.
        orgs = [1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 1, 1]
        outcomes: list[object] = []
        barrier = threading.Barrier(len(orgs))

        def submit(n: int) -> None:
            barrier.wait()
            try:
                with session_scope(factory) as session:
                    app = services.submit_application(
                        session, call_slug="pdz-demo", data=_payload(intake_payload, intake_tax_code, n),
                        now=now, ambito=intake_ambito)
                    outcomes.append(app.register_number)
            except Conflict as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=submit, args=(n,)) for n in orgs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        numbers = sorted(o for o in outcomes if isinstance(o, int))
        assert numbers == list(range(1, 9))
        assert sum(isinstance(o, Conflict) for o in outcomes) == 4
        with factory() as session:
            assert session.scalar(select(RegisterCounter.last_number)) == 8
            assert session.scalar(select(func.count()).select_from(Application)) == 8
        engine.dispose()
