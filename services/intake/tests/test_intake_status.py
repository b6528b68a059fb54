"""After acceptance: status callbacks, tracking (API and page), the reconcile and relay tasks."""

from __future__ import annotations

import datetime as dt

from ambito_common.db import session_scope
from intake import services, tasks
from intake.codes import group_tracking_code
from intake.models import Application, OutboxMessage
from lxml import html
from sqlalchemy import select
from sqlalchemy.orm import Session

SUBMIT = "/api/intake/calls/pdz-demo/applications"


def _submit(client, payload) -> dict:
    response = client.post(SUBMIT, json=payload)
    assert response.status_code == 201
    return response.get_json()


def test_intake_status_moves_forward_only_and_shows_the_protocol(intake_client, intake_worker,
                                                                  intake_payload) -> None:
    created = _submit(intake_client, intake_payload())
    ref, code = f"application:{created['id']}", created["tracking_code"]

    assert tasks.package_status(source_ref=ref, package_id="pkg-1", status="packaged") == "packaged"
    assert tasks.package_status(source_ref=ref, package_id="pkg-1", status="packaged") == "packaged"
    assert tasks.package_status(source_ref=ref, package_id="pkg-1", status="delivered") == "delivered"
    page = html.fromstring(intake_client.get(f"/intake/domande/{code}").text)
    assert page.get_element_by_id("stato-domanda").text_content() == "consegnata al protocollo"
    assert not page.xpath("//a[normalize-space()='Aggiorna']")

    protocol = {"number": "2024/0012345", "date": "2024-10-03"}
    assert tasks.package_status(source_ref=ref, package_id="pkg-1", status="registered",
                                protocol=protocol) == "registered"
    # Late and repeated messages change nothing.
    assert tasks.package_status(source_ref=ref, package_id="pkg-1", status="delivered") == "registered"
    assert tasks.package_status(source_ref=ref, package_id="pkg-2", status="registered",
                                protocol={"number": "999", "date": "2025-01-01"}) == "registered"

    status = intake_client.get(f"/api/intake/applications/{code}").get_json()
    assert status == {"tracking_code": code, "status": "registered", "package_id": "pkg-1",
                      "protocol": {"number": "2024/0012345", "date": "2024-10-03"}}
    with intake_worker.session_factory() as session:
        application = session.get(Application, created["id"])
        assert [e.status for e in application.events] == ["received", "packaged", "delivered", "registered"]

    page = html.fromstring(intake_client.get(f"/intake/domande/{code}").text)
    assert page.get_element_by_id("stato-domanda").text_content() == "protocollata"
    assert " ".join(page.get_element_by_id("protocollo").text_content().split()) == \
        "n. 2024/0012345 del 03/10/2024"
    items = page.xpath("//ol/li[contains(@class, 'list-group-item')]")
    steps = [" ".join(li.text_content().split()) for li in items]
    assert len(steps) == 4 and all("completato" in s for s in steps)
    assert "n. 2024/0012345 del 03/10/2024" in steps[3]


def test_intake_status_a_late_packaged_after_registered_and_unknown_refs(intake_client, intake_worker,
                                                                          intake_payload) -> None:
    created = _submit(intake_client, intake_payload())
    ref = f"application:{created['id']}"
    # Out of order: the registration arrives before "delivered"; it still counts.
    assert tasks.package_status(source_ref=ref, package_id="p", status="registered",
                                protocol={"number": "7", "date": "2024-10-03"}) == "registered"
    assert tasks.package_status(source_ref=ref, package_id="p", status="packaged") == "registered"
    assert tasks.package_status(source_ref="application:nope", package_id="p", status="packaged") is None
    assert tasks.package_status(source_ref="voucher:1", package_id="p", status="packaged") is None


def test_intake_status_page_steps_while_processing(intake_client, intake_payload) -> None:
    code = _submit(intake_client, intake_payload())["tracking_code"]
    page = html.fromstring(intake_client.get(f"/intake/domande/{group_tracking_code(code).lower()}").text)
    steps = page.xpath("//ol/li[contains(@class, 'list-group-item')]")
    assert [li.get("aria-current") for li in steps] == ["step", None, None, None]
    assert "in attesa" in steps[1].text_content()
    assert not page.xpath("//meta[@http-equiv='refresh']")


def test_intake_status_unknown_codes(intake_client) -> None:
    api = intake_client.get("/api/intake/applications/0000000000000000000Z")
    assert api.status_code == 404 and api.mimetype == "application/problem+json"
    assert "codice di tracciamento" in api.get_json()["detail"]
    page = intake_client.get("/intake/domande/ABCD-EFGH-JKMN-PQRS-TVWX")
    assert page.status_code == 404 and "Nessuna domanda corrisponde" in page.text
    assert intake_client.get("/intake/domande/non-un-codice").status_code == 404


def test_intake_status_lookup_form(intake_client, intake_payload) -> None:
    code = _submit(intake_client, intake_payload())["tracking_code"]
    empty = intake_client.get("/intake/domande")
    assert empty.status_code == 200
    assert html.fromstring(empty.text).xpath("//form[@method='get']//input[@name='code']")
    found = intake_client.get("/intake/domande", query_string={"code": group_tracking_code(code).lower()})
    assert found.status_code == 303 and found.headers["Location"] == f"/intake/domande/{code}"
    wrong = intake_client.get("/intake/domande", query_string={"code": "ABC-123"})
    assert wrong.status_code == 422
    doc = html.fromstring(wrong.text)
    assert doc.xpath("//input[@name='code']/@value") == ["ABC-123"]
    assert "Codice non valido" in doc.text_content() and doc.xpath("//a[@href='#f-code']")
    blank = intake_client.get("/intake/domande", query_string={"code": " "})
    assert blank.status_code == 422 and "Campo obbligatorio." in blank.text


def test_intake_status_reconcile_asks_documents_again(intake_client, intake_runtime, intake_payload) -> None:
    created = _submit(intake_client, intake_payload())
    ambito = intake_runtime.ambito
    with session_scope(intake_runtime.session_factory) as session:
        submitted = session.get(Application, created["id"]).submitted_at
        early = submitted + dt.timedelta(seconds=299)
        assert services.requeue_stale_packages(session, now=early, older_than=dt.timedelta(seconds=300),
                                               ambito=ambito) == 0
        late = submitted + dt.timedelta(seconds=300)
        assert services.requeue_stale_packages(session, now=late, older_than=dt.timedelta(seconds=300),
                                               ambito=ambito) == 1
        # Asked again just now: not again until another period has passed.
        assert services.requeue_stale_packages(session, now=late + dt.timedelta(seconds=10),
                                               older_than=dt.timedelta(seconds=300), ambito=ambito) == 0
    with intake_runtime.session_factory() as session:
        builds = session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "documents.build_package").order_by(OutboxMessage.id)).all()
        assert len(builds) == 2 and builds[0].kwargs == builds[1].kwargs  # the same, idempotent request
        assert all(b.published_at is not None for b in builds)
    with session_scope(intake_runtime.session_factory) as session:
        services.record_package_status(session, source_ref=f"application:{created['id']}",
                                       package_id="p", status="packaged", protocol=None, now=late)
    with session_scope(intake_runtime.session_factory) as session:
        assert services.requeue_stale_packages(session, now=late + dt.timedelta(days=1),
                                               older_than=dt.timedelta(seconds=300), ambito=ambito) == 0


def test_intake_status_reconcile_and_relay_tasks(intake_client, intake_env, intake_payload, monkeypatch,
                                                 tmp_path) -> None:
    from intake.runtime import worker_runtime

    created = _submit(intake_client, intake_payload())
    for key, value in {**intake_env, "INTAKE_PACKAGE_RETRY_SECONDS": "0"}.items():
        monkeypatch.setenv(key, value)
    worker_runtime.cache_clear()
    try:
        runtime = worker_runtime()
        assert runtime.settings.package_retry_seconds == 0
        queue = tmp_path / "var" / "broker" / "queue"
        before = len(list(queue.iterdir()))
        assert tasks.reconcile() == 1  # committed and published right after the commit
        assert len(list(queue.iterdir())) == before + 1
        # A row the after-commit relay never saw (a crash between commit and publish):
        engine = runtime.session_factory.kw["bind"]
        with Session(engine) as session, session.begin():
            session.add(OutboxMessage(task_name="intake.send_receipt",
                                      kwargs={"application_id": created["id"]}))
        assert tasks.relay_outbox() == 1
        assert tasks.relay_outbox() == 0
        assert len(list(queue.iterdir())) == before + 2
    finally:
        worker_runtime.cache_clear()
