"""The desk's capacity under concurrency, on PostgreSQL: 50 requests for the last seat, one booking."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from ambito_common.testing import fresh_postgres_database
from intake.models import DeskBooking
from sqlalchemy import func, select

pytestmark = pytest.mark.postgres


@pytest.fixture
def intake_env(intake_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The suite's environment, with the intake database on a fresh PostgreSQL database."""
    with fresh_postgres_database("intake_desk") as url:
        yield {**intake_env, "INTAKE_DATABASE_URL": url}


def test_intake_desk_postgres_50_concurrent_requests_for_the_last_seat(
        intake_app, intake_runtime, intake_booking_payload, intake_free_slot) -> None:
    assert intake_runtime.settings.database_url.startswith("postgresql")
    slot = intake_free_slot()  # capacity 2
    first = intake_app.test_client().post("/api/intake/desk/bookings",
                                          json=intake_booking_payload(slot["start"]))
    assert first.status_code == 201

    barrier = threading.Barrier(50)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(n: int) -> None:
        client = intake_app.test_client()
        payload = intake_booking_payload(slot["start"])
        payload["contact"]["email"] = f"persona{n}@example.it"
        barrier.wait()
        status = client.post("/api/intake/desk/bookings", json=payload).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [201] + [409] * 49
    with intake_runtime.session_factory() as session:
        seats = session.execute(select(DeskBooking.seat, func.count()).where(DeskBooking.status == "booked")
                                .group_by(DeskBooking.seat)).all()
    assert sorted(tuple(s) for s in seats) == [(1, 1), (2, 1)]
