"""SAD voucher requests through the API: the comuni, the form's rules, uploads, submission, the package."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

from intake import services
from intake.models import OutboxMessage, RegisterCounter, SadAttachment, SadEvent, SadRequest
from sqlalchemy import func, select

CREATE = "/api/intake/sad-requests"
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_intake_sad_comuni_are_the_24_of_the_ambito(intake_client) -> None:
    comuni = intake_client.get("/api/intake/comuni").get_json()
    assert len(comuni) == 24
    assert {"code": "vilminore-di-scalve", "name": "Vilminore di Scalve",
            "sub_ambito": "val-di-scalve"} in comuni
    assert all(set(c) == {"code", "name", "sub_ambito"} for c in comuni)


def test_intake_sad_request_is_created_as_a_draft(intake_client, intake_runtime, intake_sad_payload) -> None:
    response = intake_client.post(CREATE, json=intake_sad_payload())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == {"id", "tracking_code", "status"} and body["status"] == "draft"
    with intake_runtime.session_factory() as session:
        found = session.get(SadRequest, body["id"])
        assert found.comune == "schilpario" and found.isee_expired is False
        assert found.data["isee"]["value_cents"] == 950000
        assert found.data["beneficiary"]["birth_date"] == "1940-01-01"
        assert found.register_number is None and session.scalar(select(func.count(RegisterCounter.year))) == 0
        assert (found.expires_at - found.created_at) == dt.timedelta(days=30)
        assert [(e.status, e.actor) for e in found.events] == [("draft", "cittadino")]
    status = intake_client.get(f"/api/intake/applications/{body['tracking_code']}").get_json()
    assert status["status"] == "draft" and status["tracking_code"] == body["tracking_code"]


def test_intake_sad_request_rules_answer_per_field_in_italian(intake_client, intake_sad_payload) -> None:
    payload = intake_sad_payload()
    payload["beneficiary"].update(comune="bergamo", birth_date="1940-01-02")
    payload["applicant"]["tax_code"] = "VRDLGU70M01C800X"
    payload["isee"] = {"value_cents": 500000}
    payload["health_data_consent"] = False
    del payload["self_declaration"]
    response = intake_client.post(CREATE, json=payload)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    errors = response.get_json()["errors"]
    assert "Clusone" in errors["beneficiary.comune"][0]
    assert "Vilminore di Scalve" in errors["beneficiary.comune"][0]
    assert errors["beneficiary.birth_date"] == [
        "La data di nascita non corrisponde al codice fiscale (01/01/1940)."]
    assert errors["applicant.tax_code"] == ["Codice fiscale non valido: controllare i caratteri."]
    assert set(errors) >= {"isee.dsu_protocol", "isee.expires_on", "self_declaration", "health_data_consent"}
    assert "art. 9" not in errors["health_data_consent"][0]  # the message says what to do, not the law


def test_intake_sad_expired_isee_is_flagged_not_refused(intake_client, intake_runtime,
                                                       intake_sad_payload) -> None:
    payload = intake_sad_payload(isee={"value_cents": 950000, "dsu_protocol": "INPS-ISEE-2024-012345678-00",
                                       "expires_on": "2024-12-31"})
    created = intake_client.post(CREATE, json=payload).get_json()
    with intake_runtime.session_factory() as session:
        assert session.get(SadRequest, created["id"]).isee_expired is True


def test_intake_sad_submit_packages_for_the_comune_with_the_files(intake_client, intake_runtime,
                                                                  intake_sad_payload, intake_upload) -> None:
    created = intake_client.post(CREATE, json=intake_sad_payload()).get_json()
    code = created["tracking_code"]
    first = intake_upload(code, PDF_BYTES, name="attestazione ISEE.PDF", kind="isee")
    assert first.status_code == 201, first.get_json()
    assert first.get_json() == {"name": "attestazione-ISEE.pdf",
                                "sha256": hashlib.sha256(PDF_BYTES).hexdigest(), "size": len(PDF_BYTES)}
    assert intake_upload(code, PNG_BYTES, name="documento.png", kind="identity").status_code == 201
    assert intake_upload(code, PNG_BYTES, name="ancora.png", kind="identity").status_code == 409

    response = intake_client.post(f"/api/intake/sad-requests/{code}/submit", json={})
    assert response.status_code == 200 and response.get_json() == {"status": "received"}
    assert intake_client.post(f"/api/intake/sad-requests/{code}/submit", json={}).status_code == 409
    status = intake_client.get(f"/api/intake/applications/{code}").get_json()
    assert status["status"] == "received" and status["case_status"] == "new"

    with intake_runtime.session_factory() as session:
        found = session.get(SadRequest, created["id"])
        assert (found.register_code, found.register_number) == ("ISTANZE_ONLINE", 1)
        assert found.expires_at is None
        outbox = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        builds = [m.kwargs for m in outbox if m.task_name == "documents.build_package"]
        updates = [m.kwargs["event_id"] for m in outbox if m.task_name == "intake.send_sad_update"]
        assert len(updates) == 2  # the draft's link, then the receipt
        assert [e.status for e in found.events] == ["draft", "received"]
    assert len(builds) == 1
    build = builds[0]
    assert build["source"] == "intake" and build["source_ref"] == f"sad_request:{created['id']}"
    assert build["callback"] == "intake.package_status"
    payload = build["payload"]
    assert payload["kind"] == "sad_request" and payload["subject"] == "Richiesta voucher SAD - Schilpario"
    assert payload["file_stem"] == f"richiesta-sad-{code}"
    assert payload["document"]["registration"] == services.registration_label(found)
    assert "0000001" in payload["document"]["registration"]
    assert [s["title"] for s in payload["document"]["sections"]] == [
        "Chi presenta la domanda", "Beneficiario", "Condizione", "ISEE", "Bisogni e servizi"]
    rows = {r["label"]: r["value"] for r in payload["document"]["sections"][1]["fields"]}
    assert rows["Data di nascita"] == "01/01/1940" and rows["Comune di residenza"] == "Schilpario"
    assert any("art. 76" in d for d in payload["document"]["declarations"])
    assert any("art. 9" in d for d in payload["document"]["declarations"])
    meta = payload["meta"]
    aoo = json.loads((intake_runtime.settings.platform.data_dir / "aoo.json").read_text())["aoo"]
    assert meta["recipient"] == {key: aoo["schilpario"][key]
                                 for key in ("name", "ipa_code", "aoo_code", "aoo_name", "pec")}
    assert payload["residence"] == {"comune": "schilpario"}
    assert meta["sender"]["tax_code"] == "VRDLGU70M01C800H"
    assert meta["registration"]["number"] == "0000001"
    files = {a["name"]: a for a in payload["attachments"]}
    assert set(files) == {"attestazione-ISEE.pdf", "documento.png"}
    pdf = files["attestazione-ISEE.pdf"]
    assert base64.b64decode(pdf["content_b64"]) == PDF_BYTES
    assert pdf["sha256"] == hashlib.sha256(PDF_BYTES).hexdigest() and pdf["media_type"] == "application/pdf"
    assert files["documento.png"]["media_type"] == "image/png"

    # After submission a citizen cannot add files until the social worker asks for some.
    assert intake_upload(code, PDF_BYTES + b"x").status_code == 409


def test_intake_sad_package_status_moves_forward_and_mails_each_step(
        intake_client, intake_runtime, intake_worker, intake_sad_payload) -> None:
    from intake import tasks

    created = intake_client.post(CREATE, json=intake_sad_payload()).get_json()
    intake_client.post(f"/api/intake/sad-requests/{created['tracking_code']}/submit", json={})
    ref = f"sad_request:{created['id']}"
    assert tasks.package_status(source_ref=ref, package_id="pkg-1", status="delivered") == "delivered"
    assert tasks.package_status(source_ref=ref, package_id="pkg-1", status="packaged") == "delivered"
    assert tasks.package_status(source_ref=ref, package_id="pkg-1", status="registered",
                                protocol={"number": "4321", "date": "2026-11-21"}) == "registered"
    status = intake_client.get(f"/api/intake/applications/{created['tracking_code']}").get_json()
    assert status["protocol"] == {"number": "4321", "date": "2026-11-21"} and status["package_id"] == "pkg-1"
    with intake_runtime.session_factory() as session:
        events = session.scalars(select(SadEvent).where(SadEvent.request_id == created["id"])
                                 .order_by(SadEvent.id)).all()
        assert [e.status for e in events] == ["draft", "received", "delivered", "registered"]
        mailed = {m.kwargs["event_id"] for m in session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "intake.send_sad_update"))}
        assert mailed == {e.id for e in events}  # every transition is announced


def test_intake_sad_attachment_metadata_is_kept(intake_client, intake_runtime, intake_sad_payload,
                                                 intake_upload) -> None:
    created = intake_client.post(CREATE, json=intake_sad_payload()).get_json()
    intake_upload(created["tracking_code"], PDF_BYTES, kind="certificate")
    with intake_runtime.session_factory() as session:
        attachment = session.scalars(select(SadAttachment)).one()
        assert (attachment.kind, attachment.media_type, attachment.size) == (
            "certificate", "application/pdf", len(PDF_BYTES))
    stored = intake_runtime.settings.storage_dir / created["id"] / attachment.sha256
    assert stored.read_bytes() == PDF_BYTES


def test_intake_sad_reconcile_asks_documents_again(intake_client, intake_worker,
                                                   intake_sad_payload) -> None:
    from intake import tasks

    created = intake_client.post(CREATE, json=intake_sad_payload()).get_json()
    intake_client.post(f"/api/intake/sad-requests/{created['tracking_code']}/submit", json={})
    assert tasks.reconcile() == 0  # not stale yet
    with intake_worker.session_factory() as session, session.begin():
        found = session.get(SadRequest, created["id"])
        found.package_requested_at -= dt.timedelta(hours=1)
    assert tasks.reconcile() == 1
    with intake_worker.session_factory() as session:
        builds = session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "documents.build_package")).all()
        assert [b.kwargs["source_ref"] for b in builds] == [f"sad_request:{created['id']}"] * 2
