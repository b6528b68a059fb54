"""Build-once and registration on PostgreSQL, as in distributed mode (row locks, a real unique index)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from ambito_common.testing import fresh_postgres_database
from documents import tasks
from documents.models import Package, PackageFile
from sqlalchemy import func, select

pytestmark = pytest.mark.postgres
CALLBACK = "intake.package_status"


@pytest.fixture
def documents_database_url() -> Iterator[str]:
    with fresh_postgres_database("documents") as url:
        yield url


def _count(runtime, model) -> int:  # type: ignore[no-untyped-def]
    with runtime.session_factory() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_postgres_builds_once_under_concurrency_and_registers(
        documents_runtime, documents_build, documents_client, documents_officer, documents_outbox) -> None:
    assert documents_runtime.settings.database_url.startswith("postgresql")
    results: list[str] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        results.append(documents_build())

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(set(results)) == 1 and len(results) == 3
    assert documents_build() == results[0]  # and once more, after the fact
    package_id = results[0]
    assert _count(documents_runtime, Package) == 1
    assert _count(documents_runtime, PackageFile) == 5
    folders = [p.name for p in documents_runtime.store.root.iterdir() if p.name != ".tmp"]
    assert folders == [package_id]

    assert tasks.deliver_package.run(package_id=package_id) == "delivered"
    today = dt.datetime.now(ZoneInfo("Europe/Rome")).date().isoformat()
    path = f"/api/documents/packages/{package_id}/registration"
    response = documents_client.post(path, json={"number": "", "date": "2999-01-01"},
                                     headers=documents_officer)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"number", "date"}
    response = documents_client.post(path, json={"number": "0004242", "date": today},
                                     headers=documents_officer)
    assert response.status_code == 200
    assert response.get_json()["status"] == "registered"
    assert documents_client.post(path, json={"number": "0004242", "date": today},
                                 headers=documents_officer).status_code == 200
    assert documents_client.post(path, json={"number": "0004243", "date": today},
                                 headers=documents_officer).status_code == 409
    callbacks = [kwargs for task, kwargs in documents_outbox() if task == CALLBACK]
    assert callbacks[-1] == {"source_ref": "application:1", "package_id": package_id,
                             "status": "registered", "protocol": {"number": "0004242", "date": today}}
    assert [c["status"] for c in callbacks].count("registered") == 1
