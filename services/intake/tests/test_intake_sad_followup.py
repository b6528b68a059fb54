"""After submission: supplements for the protocol, rejections by the protocol, the voucher's outcome.

Through the paths people and services take: the citizen's tracking page (form posts with
CSRF), the social worker's API and pages, and the Celery tasks documents and vouchers call.
"""

from __future__ import annotations

import base64
import email
import hashlib
import io

from intake import tasks
from intake.models import OutboxMessage, SadEvent, SadRequest
from lxml import html
from sqlalchemy import select

VERBALE = b"%PDF-1.4\nverbale di invalidita\n%%EOF\n"
ISEE = b"%PDF-1.4\nattestazione isee\n%%EOF\n"


def _submitted(client, upload, payload) -> dict[str, str]:
    created = client.post("/api/intake/sad-requests", json=payload).get_json()
    assert upload(created["tracking_code"], ISEE).status_code == 201
    submitted = client.post(f"/api/intake/sad-requests/{created['tracking_code']}/submit", json={})
    assert submitted.status_code == 200
    return created


def _builds(runtime) -> list[dict]:
    with runtime.session_factory() as session:
        return [m.kwargs for m in session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "documents.build_package").order_by(OutboxMessage.id))]


def _answer_with_upload(client, csrf, code: str, content: bytes, name: str) -> None:
    """The citizen, on the tracking page: upload the file asked for, then confirm."""
    client.get(f"/intake/sad/{code}")  # the page sets the CSRF cookie
    uploaded = client.post(f"/intake/sad/{code}/allegati", data={
        "csrf_token": csrf(), "kind": "certificate", "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data")
    assert uploaded.status_code == 303
    sent = client.post(f"/intake/sad/{code}/documenti-inviati", data={"csrf_token": csrf()})
    assert sent.status_code == 303


def _mails(mail_dir) -> list[email.message.Message]:
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(mail_dir.glob("*.eml"))]


def _body(message) -> str:
    return message.get_payload(decode=True).decode(message.get_content_charset())


def _send_pending(runtime, task_name: str, send) -> None:
    with runtime.session_factory() as session:
        ids = [m.kwargs["event_id"] for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.task_name == task_name))]
    for event_id in ids:
        send(event_id=event_id)


def test_intake_sad_supplement_goes_to_the_comune_protocol_on_its_own_road(
        intake_client, intake_csrf, intake_worker, intake_token, intake_upload, intake_sad_payload) -> None:
    created = _submitted(intake_client, intake_upload, intake_sad_payload())
    code, request_id = created["tracking_code"], created["id"]
    worker = intake_token("marta.neri", "social_worker", comune="schilpario")
    main_ref = f"sad_request:{request_id}"
    assert tasks.package_status(source_ref=main_ref, package_id="pkg-main", status="delivered") == "delivered"
    intake_client.post(f"/api/intake/sad-requests/{request_id}/request-documents",
                       json={"message": "Verbale di invalidità civile"}, headers=worker)

    _answer_with_upload(intake_client, intake_csrf, code, VERBALE, "verbale.pdf")

    main, supplement = _builds(intake_worker)
    assert main["source_ref"] == main_ref
    assert [a["sha256"] for a in main["payload"]["attachments"]] == [hashlib.sha256(ISEE).hexdigest()]
    assert supplement["source_ref"] == f"sad_request:{request_id}:integrazione:1"
    assert supplement["callback"] == "intake.package_status"
    payload = supplement["payload"]
    assert payload["kind"] == "sad_supplement" and payload["residence"] == {"comune": "schilpario"}
    (attached,) = payload["attachments"]
    assert attached["name"] == "verbale.pdf" and attached["sha256"] == hashlib.sha256(VERBALE).hexdigest()
    assert base64.b64decode(attached["content_b64"]) == VERBALE
    document = payload["document"]
    assert document["title"] == "Integrazione documentale" and document["tracking_code"] == code
    shown = {f["label"]: f["value"] for s in document["sections"] for f in s["fields"]}
    assert shown["Certificazione sanitaria o di invalidità"].startswith("verbale.pdf")
    assert "Verbale di invalidità civile" in shown["Richiesta del servizio sociale"]
    assert "Luigi Verdi" in shown["Richiedente"]
    # Its own number of our register, not the request's.
    assert payload["meta"]["registration"]["number"] != main["payload"]["meta"]["registration"]["number"]
    assert payload["meta"]["sender"]["email"] == "luigi.verdi@example.it"

    # The supplement's reports never move the request (already delivered) back.
    ref = supplement["source_ref"]
    assert tasks.package_status(source_ref=ref, package_id="pkg-s1", status="packaged") == "packaged"
    assert tasks.package_status(source_ref=ref, package_id="pkg-s1", status="registered",
                                protocol={"number": "0007001", "date": "2026-11-23"}) == "registered"
    assert tasks.package_status(source_ref=ref, package_id="pkg-s1", status="delivered") == "registered"
    assert tasks.package_status(source_ref="sad_request:nope:integrazione:1", package_id="x",
                                status="packaged") is None
    with intake_worker.session_factory() as session:
        found = session.get(SadRequest, request_id)
        assert found.status == "delivered"
        assert found.supplements[0].package_id == "pkg-s1"
        steps = [e.status for e in found.events if e.status.startswith("supplement_")]
    assert steps == ["supplement_packaged", "supplement_registered"]

    page = html.fromstring(intake_client.get(f"/intake/sad/{code}").text)
    assert "protocollata: n. 0007001 del 23/11/2026" in page.xpath("string(//*[@id='integrazioni'])")
    assert "verbale.pdf" in page.xpath("string(//*[@id='integrazioni'])")
    assert "Integrazione documentale n. 1 protocollata" in page.xpath("string(//*[@id='cronologia'])")
    intake_client.set_cookie("ambito_identity", worker["Authorization"].removeprefix("Bearer "))
    case = html.fromstring(intake_client.get(f"/intake/servizi-sociali/sad/{request_id}").text)
    assert "protocollata: n. 0007001" in case.xpath("string(//*[@id='integrazioni'])")

    # A second request for documents, a second supplement with a reference of its own.
    intake_client.post(f"/api/intake/sad-requests/{request_id}/request-documents",
                       json={"message": "Documento d'identità leggibile"}, headers=worker)
    _answer_with_upload(intake_client, intake_csrf, code, ISEE + b"2", "documento.pdf")
    second = _builds(intake_worker)[-1]
    assert second["source_ref"] == f"sad_request:{request_id}:integrazione:2"
    assert [a["name"] for a in second["payload"]["attachments"]] == ["documento.pdf"]


def test_intake_application_rejected_by_the_protocol_is_shown_and_mailed(
        intake_client, intake_worker, intake_env, tmp_path, intake_payload, intake_tax_code) -> None:
    created = intake_client.post("/api/intake/calls/pdz-demo/applications", json=intake_payload()).get_json()
    ref = f"application:{created['id']}"
    rejection = {"code": "E-SEGNATURA", "reason": "Segnatura non conforme"}
    assert tasks.package_status(source_ref=ref, package_id="p1", status="delivered") == "delivered"
    assert tasks.package_status(source_ref=ref, package_id="p1", status="rejected", rejection=rejection,
                                future_argument="ignored") == "rejected"
    assert tasks.package_status(source_ref=ref, package_id="p1", status="rejected",
                                rejection=rejection) == "rejected"
    assert tasks.package_status(source_ref=ref, package_id="p1", status="delivered") == "rejected"

    page = intake_client.get(f"/intake/domande/{created['tracking_code']}")
    doc = html.fromstring(page.text)
    assert doc.xpath("string(//*[@id='stato-domanda'])") == "Respinta dal protocollo"
    assert "Segnatura non conforme" in doc.xpath("string(//*[@id='respinta-protocollo'])")
    assert intake_client.get(f"/api/intake/applications/{created['tracking_code']}").get_json()["status"] \
        == "rejected"

    _send_pending(intake_worker, "intake.send_application_update", tasks.send_application_update)
    _send_pending(intake_worker, "intake.send_application_update", tasks.send_application_update)
    (mail,) = _mails(tmp_path / "mail")
    assert mail["To"] == "info@amici.example.it" and mail["Cc"] == "anna.bianchi@example.it"
    assert "respinta dal protocollo" in mail["Subject"]
    assert "Segnatura non conforme (codice E-SEGNATURA)" in _body(mail)

    # A registered application is never moved back by a late rejection.
    other = intake_client.post("/api/intake/calls/pdz-demo/applications", json=intake_payload(
        organisation={**intake_payload()["organisation"], "tax_code": intake_tax_code(2)})).get_json()
    other_ref = f"application:{other['id']}"
    assert tasks.package_status(source_ref=other_ref, package_id="p2", status="registered",
                                protocol={"number": "42", "date": "2026-11-22"}) == "registered"
    assert tasks.package_status(source_ref=other_ref, package_id="p2", status="rejected",
                                rejection=rejection) == "registered"


def test_intake_sad_request_and_supplement_rejected_by_the_protocol(
        intake_client, intake_csrf, intake_worker, intake_token, intake_upload, intake_sad_payload,
        tmp_path) -> None:
    created = _submitted(intake_client, intake_upload, intake_sad_payload())
    code, request_id = created["tracking_code"], created["id"]
    ref = f"sad_request:{request_id}"
    assert tasks.package_status(source_ref=ref, package_id="p", status="rejected",
                                rejection={"code": None, "reason": "Allegato illeggibile"}) == "rejected"
    assert tasks.package_status(source_ref=ref, package_id="p", status="packaged") == "rejected"
    worker = intake_token("marta.neri", "social_worker", comune="schilpario")
    intake_client.post(f"/api/intake/sad-requests/{request_id}/request-documents",
                       json={"message": "Attestazione ISEE leggibile"}, headers=worker)
    _answer_with_upload(intake_client, intake_csrf, code, VERBALE, "isee-nuovo.pdf")
    assert tasks.package_status(source_ref=f"{ref}:integrazione:1", package_id="q", status="rejected",
                                rejection={"code": "E02", "reason": "PEC non consegnata"}) == "rejected"

    page = html.fromstring(intake_client.get(f"/intake/sad/{code}").text)
    assert "Allegato illeggibile" in page.xpath("string(//*[@id='respinta-protocollo'])")
    assert "Respinta dal protocollo: PEC non consegnata (codice E02)" in page.xpath(
        "string(//*[@id='integrazioni'])")
    assert intake_client.get(f"/api/intake/applications/{code}").get_json()["rejection"] == {
        "code": None, "reason": "Allegato illeggibile"}
    with intake_worker.session_factory() as session:
        statuses = [e.status for e in session.scalars(
            select(SadEvent).where(SadEvent.request_id == request_id))]
    assert statuses.count("protocol_rejected") == 1 and statuses.count("supplement_rejected") == 1

    _send_pending(intake_worker, "intake.send_sad_update", tasks.send_sad_update)
    bodies = [_body(m) for m in _mails(tmp_path / "mail")]
    assert any("Respinta dal protocollo: Allegato illeggibile" in b for b in bodies)
    assert any("Integrazione documentale n. 1" in b and "PEC non consegnata" in b for b in bodies)


def test_intake_sad_voucher_outcome_reaches_the_citizen_and_the_social_worker(
        intake_client, intake_worker, intake_token, intake_upload, intake_sad_payload, tmp_path) -> None:
    created = _submitted(intake_client, intake_upload, intake_sad_payload())
    code, request_id = created["tracking_code"], created["id"]
    path = f"/api/intake/sad-requests/{request_id}"
    worker = intake_token("marta.neri", "social_worker", comune="schilpario")
    intake_client.post(path + "/care-plan", json={"asa_hours_week": 4, "oss_hours_week": 2,
                                                  "start_date": "2026-12-01", "weeks": 12,
                                                  "provider": "coop-sociale-scalve"}, headers=worker)
    intake_client.post(path + "/approve", json={}, headers=worker)
    with intake_worker.session_factory() as session:
        ref = session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "vouchers.request_voucher")).one().kwargs["source_ref"]
    vouchers = [{"id": 7, "profile": "ASA", "value_cents": 110400, "status": "waiting"},
                {"id": 8, "profile": "OSS", "value_cents": 60000, "status": "waiting"}]

    assert tasks.voucher_status(source_ref=ref, status="waiting_list", vouchers=vouchers,
                                waiting_position=3) == "waiting_list"
    assert tasks.voucher_status(source_ref=ref, status="waiting_list", vouchers=vouchers,
                                waiting_position=2) == "waiting_list"  # same state: no new event
    page = html.fromstring(intake_client.get(f"/intake/sad/{code}").text)
    assert page.xpath("string(//*[@id='stato-richiesta'])") == "in lista d'attesa, posizione 2"

    granted = [{**v, "status": "active"} for v in vouchers]
    assert tasks.voucher_status(source_ref=ref, status="granted", vouchers=granted,
                                waiting_position=None) == "voucher_granted"
    assert tasks.voucher_status(source_ref=ref, status="granted", vouchers=granted) == "voucher_granted"
    page = html.fromstring(intake_client.get(f"/intake/sad/{code}").text)
    assert page.xpath("string(//*[@id='stato-richiesta'])") == "voucher assegnato"
    assert "ASA: 1104,00 € (attivo)" in page.xpath("string(//*[@id='voucher'])")
    intake_client.set_cookie("ambito_identity", worker["Authorization"].removeprefix("Bearer "))
    case = html.fromstring(intake_client.get(f"/intake/servizi-sociali/sad/{request_id}").text)
    assert case.xpath("string(//*[@id='stato-caso'])") == "voucher assegnato"
    assert "servizio voucher: Voucher assegnato" in case.text_content()

    closed = [{**v, "status": "closed"} for v in vouchers]
    assert tasks.voucher_status(source_ref=ref, status="closed", vouchers=closed) == "voucher_closed"
    assert tasks.voucher_status(source_ref=ref, status="granted", vouchers=granted) == "voucher_closed"
    assert tasks.voucher_status(source_ref="sad_request:nope", status="granted", vouchers=[]) is None

    with intake_worker.session_factory() as session:
        events = session.scalars(select(SadEvent).where(
            SadEvent.request_id == request_id, SadEvent.actor == "servizio voucher")
            .order_by(SadEvent.id)).all()
        assert [(e.status, e.actor_role) for e in events] == [
            ("waiting_list", "vouchers"), ("voucher_granted", "vouchers"), ("voucher_closed", "vouchers")]
        assert "posizione 3" in events[0].detail and "1.104,00 €" in events[1].detail
    _send_pending(intake_worker, "intake.send_sad_update", tasks.send_sad_update)
    bodies = [_body(m) for m in _mails(tmp_path / "mail")]
    assert sum("lista d'attesa" in b for b in bodies) == 1
    assert sum("Voucher assegnato" in b for b in bodies) == 1
    assert sum("Voucher chiuso" in b for b in bodies) == 1
