"""Sealed documents: every reimbursement request, decision and payment, and every reserved voucher,
becomes a package request for documents; documents' reports show on the request."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import threading
import uuid

import pytest
from ambito_common.identity import COMUNE_OPERATOR
from ambito_common.testing import REPO_ROOT
from sqlalchemy import select
from vouchers.app import create_app
from vouchers.models import OutboxMessage, SealedDocument
from vouchers.runtime import worker_runtime
from vouchers.tasks import package_status, reconcile_documents, seal_document

FUND, PERIOD = "residenzialita", "2026"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def vouchers_docs_env(vouchers_worker_env, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The worker's environment, with a data directory that gives a provider an e-mail."""
    data_dir = tmp_path / "data"
    shutil.copytree(REPO_ROOT / "data" / "ambiti" / "vsssc", data_dir)
    sad = json.loads((data_dir / "sad.json").read_text(encoding="utf-8"))
    sad["providers"][0]["email"] = "ufficio@coop-alto-serio.example"
    (data_dir / "sad.json").write_text(json.dumps(sad), encoding="utf-8")
    monkeypatch.setenv("AMBITO_DATA_DIR", str(data_dir))
    worker_runtime.cache_clear()
    return {**vouchers_worker_env, "AMBITO_DATA_DIR": str(data_dir)}


@pytest.fixture
def vouchers_docs(vouchers_docs_env, vouchers_make_runtime):  # type: ignore[no-untyped-def]
    runtime = vouchers_make_runtime(**vouchers_docs_env)
    return runtime, create_app(runtime=runtime).test_client()


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _request(comune: str, asked: int) -> dict:
    return {"fund": FUND, "period": PERIOD, "comune": comune, "lines": [
        {"beneficiary_ref": "CS-9", "service": "RSA Don Stefano Palla, Piario", "service_period": "2026",
         "amount_paid": asked + 1000, "amount_asked": asked},
        {"beneficiary_ref": "CS-10", "service": "RSA Clusone", "service_period": "gen-giu 2026",
         "amount_paid": 50_000, "amount_asked": 50_000}]}


def _build_requests(runtime) -> list[dict]:  # type: ignore[no-untyped-def]
    """Run the pending seal_document messages as the worker would; the build_package kwargs they enqueue."""
    with runtime.session_factory() as session:
        pending = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id).where(
            OutboxMessage.task_name == "vouchers.seal_document")).all()
        ids = [row.kwargs["document_id"] for row in pending]
    for document_id in ids:
        assert seal_document.apply(kwargs={"document_id": document_id}).get() is True
    with runtime.session_factory() as session:
        return [row.kwargs for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.task_name == "documents.build_package")
            .order_by(OutboxMessage.id))]


def test_vouchers_documents_request_decision_payment_become_packages(vouchers_docs, vouchers_auth):
    runtime, client = vouchers_docs
    operator = vouchers_auth(COMUNE_OPERATOR, "gromo")
    filed = client.post("/api/vouchers/reimbursements", headers={**operator, **_key()}, data={
        "request": json.dumps(_request("gromo", 300_000)),
        "invoices": [(io.BytesIO(PDF), "fattura marzo.pdf")]}, content_type="multipart/form-data")
    assert filed.status_code == 201, filed.get_json()
    body = filed.get_json()
    assert body["invoices"] == [{"id": body["invoices"][0]["id"], "name": "fattura-marzo.pdf",
                                 "media_type": "application/pdf", "sha256": hashlib.sha256(PDF).hexdigest(),
                                 "size": len(PDF)}]
    assert [d["source_ref"] for d in body["documents"]] == [f"reimbursement:{body['id']}"]
    request_id = body["id"]

    admin = vouchers_auth(user="anna.bianchi")
    line_ids = [line["id"] for line in body["lines"]]
    decided = client.post(f"/api/vouchers/reimbursements/{request_id}/decision", headers={**admin, **_key()},
                          json={"outcome": "approve", "approved": {str(line_ids[0]): 200_000,
                                                                    str(line_ids[1]): 50_000},
                                "reason": "Retta oltre il tetto regionale."})
    assert decided.status_code == 200 and decided.get_json()["status"] == "partially_approved"
    paid = client.post(f"/api/vouchers/reimbursements/{request_id}/payment", headers={**admin, **_key()},
                       json={"payment_ref": "Mandato n. 1234 del 20/12/2026"})
    assert paid.status_code == 200

    built = _build_requests(runtime)
    assert [b["source_ref"] for b in built] == [
        f"reimbursement:{request_id}", f"reimbursement:{request_id}:decision:1",
        f"reimbursement:{request_id}:decision:2"]
    assert {b["source"] for b in built} == {"vouchers"} and {b["callback"] for b in built} == {
        "vouchers.package_status"}
    request_doc, decision_doc, payment_doc = (b["payload"] for b in built)
    assert request_doc["kind"] == "reimbursement_request"
    assert decision_doc["kind"] == payment_doc["kind"] == "reimbursement_decision"
    assert decision_doc["residence"] == {"comune": "gromo"}
    numbers = [p["meta"]["registration"]["number"] for p in (request_doc, decision_doc, payment_doc)]
    assert numbers == ["0000001", "0000002", "0000003"]
    assert request_doc["meta"]["registration"]["register_code"] == "BUONI_RIMBORSI"
    (attachment,) = request_doc["attachments"]
    assert base64.b64decode(attachment["content_b64"]) == PDF
    assert attachment["sha256"] == hashlib.sha256(PDF).hexdigest() and attachment["size"] == len(PDF)

    def values(payload: dict) -> dict[str, str]:
        return {f["label"]: f["value"] for s in payload["document"]["sections"] for f in s["fields"]}

    assert values(request_doc)["Totale chiesto"] == "3.500,00 €"
    assert values(request_doc)["fattura-marzo.pdf"].startswith(f"{len(PDF)} byte, SHA-256 ")
    decision = values(decision_doc)
    assert decision["Esito"] == "Approvata in parte" and decision["Totale riconosciuto"] == "2.500,00 €"
    assert decision["Motivazione"] == "Retta oltre il tetto regionale."
    assert decision["Decisa da"] == "anna.bianchi"
    payment = values(payment_doc)
    assert payment["Esito"] == "Pagamento registrato"
    assert payment["Estremi del pagamento"].startswith("Mandato")
    # The decision document keeps what was decided, though the request is now paid.
    assert decision_doc["data"]["decision"]["outcome"] == "partially_approved"


def test_vouchers_documents_pro_rata_decisions_explain_the_share(vouchers_docs, vouchers_auth):
    runtime, client = vouchers_docs
    for comune in ("clusone", "rovetta"):
        operator = vouchers_auth(COMUNE_OPERATOR, comune)
        client.post("/api/vouchers/reimbursements", headers={**operator, **_key()},
                    json=_request(comune, 11_950_000))
    applied = client.post("/api/vouchers/reimbursements/pro-rata", headers={**vouchers_auth(), **_key()},
                          json={"fund": FUND, "period": PERIOD})
    assert applied.status_code == 200
    decisions = [b["payload"] for b in _build_requests(runtime)
                 if b["payload"]["kind"] == "reimbursement_decision"]
    assert [d["residence"]["comune"] for d in decisions] == ["clusone", "rovetta"]
    shares = {f["label"]: f["value"] for s in decisions[0]["document"]["sections"]
              if s["title"] == "Riparto proporzionale" for f in s["fields"]}
    assert shares["Somme disponibili nel periodo"] == "180.000,00 €"
    assert shares["Totale chiesto dalle richieste aperte"] == "240.000,00 €"
    assert shares["Quota riconosciuta a ciascuna"] == "75,00%"
    assert shares["Riconosciuto a questo comune"] == "90.000,00 €"


def test_vouchers_documents_package_status_moves_forward_only(vouchers_docs, vouchers_auth):
    runtime, client = vouchers_docs
    admin = vouchers_auth()
    filed = client.post("/api/vouchers/reimbursements", headers={**vouchers_auth(COMUNE_OPERATOR, "onore"),
                                                                 **_key()}, json=_request("onore", 1000))
    request_id = filed.get_json()["id"]
    ref = f"reimbursement:{request_id}"
    assert package_status.apply(kwargs={"source_ref": ref, "package_id": "pkg-1",
                                        "status": "packaged"}).get() == "packaged"
    registered = {"source_ref": ref, "package_id": "pkg-1", "status": "registered",
                  "protocol": {"number": "2026/0004567", "date": "2026-11-22"}, "unknown_later_field": 1}
    assert package_status.apply(kwargs=registered).get() == "registered"
    assert package_status.apply(kwargs={"source_ref": ref, "package_id": "pkg-1",
                                        "status": "delivered"}).get() == "registered"  # late, ignored
    assert package_status.apply(kwargs={"source_ref": "reimbursement:999", "package_id": "x",
                                        "status": "packaged"}).get() is None
    shown = client.get(f"/api/vouchers/reimbursements/{request_id}", headers=admin).get_json()
    (document,) = shown["documents"]
    assert (document["status"], document["package_id"], document["protocol_number"]) == (
        "registered", "pkg-1", "2026/0004567")

    rejected = client.post(f"/api/vouchers/reimbursements/{request_id}/decision", headers={**admin, **_key()},
                           json={"outcome": "reject", "reason": "Servizio non ammesso dal fondo."})
    assert rejected.status_code == 200
    assert package_status.apply(kwargs={
        "source_ref": f"{ref}:decision:1", "package_id": "pkg-2", "status": "rejected",
        "rejection": {"code": "E07", "reason": "Oggetto non conforme"}}).get() == "rejected"
    with runtime.session_factory() as session:
        doc = session.scalar(select(SealedDocument).where(SealedDocument.source_ref == f"{ref}:decision:1"))
        assert (doc.rejection_code, doc.rejection_reason) == ("E07", "Oggetto non conforme")
    page = client.get(f"/vouchers/rimborsi/{request_id}", headers=admin).get_data(as_text=True)
    assert "2026/0004567" in page and "Oggetto non conforme" in page


def test_vouchers_documents_reserved_voucher_is_sealed_with_copies(vouchers_docs, vouchers_auth):
    runtime, client = vouchers_docs
    operator = vouchers_auth(COMUNE_OPERATOR, "ardesio")
    voucher = {"fund": "fnps", "period": "2026", "comune": "ardesio", "beneficiary_ref": "RTOGNN40A41A383X",
               "beneficiary_name": "Giovanna Rota", "isee": 500_000, "provider": "coop-sociale-alto-serio",
               "profile": "ASA", "hours_per_week": 400, "weeks": 10,
               "contact_email": "famiglia.rota@example.org"}
    issued = client.post("/api/vouchers/vouchers", headers={**operator, **_key()}, json=voucher)
    assert issued.status_code == 201 and issued.get_json()["status"] == "active", issued.get_json()
    waiting = client.post("/api/vouchers/vouchers", headers={**operator, **_key()},
                          json={**voucher, "hours_per_week": 16_000, "weeks": 104})
    assert waiting.get_json()["status"] == "waiting" and waiting.get_json()["document"] is None
    document = issued.get_json()["document"]
    assert (document["kind"], document["status"], document["register_number"]) == ("voucher", "requested", 1)
    (built,) = _build_requests(runtime)
    assert built["source_ref"] == f"voucher:{issued.get_json()['id']}"
    payload = built["payload"]
    assert payload["kind"] == "voucher" and payload["residence"] == {"comune": "ardesio"}
    assert payload["meta"]["copies"] == [
        {"name": "Giovanna Rota", "email": "famiglia.rota@example.org"},
        {"name": "Cooperativa sociale Alto Serio (esempio)", "email": "ufficio@coop-alto-serio.example"}]
    fields = {f["label"]: f["value"] for s in payload["document"]["sections"] for f in s["fields"]}
    assert fields["Nome e cognome"] == "Giovanna Rota" and fields["Ore settimanali"] == "4,00"


def test_vouchers_documents_unacknowledged_packages_are_asked_again(vouchers_docs, vouchers_auth,
                                                                   monkeypatch):
    """A build request lost with a worker is published again until documents answers."""
    runtime, client = vouchers_docs
    operator = vouchers_auth(COMUNE_OPERATOR, "onore")
    filed = client.post("/api/vouchers/reimbursements", headers={**operator, **_key()},
                        json=_request("onore", 1000))
    assert filed.status_code == 201, filed.get_json()
    (built,) = _build_requests(runtime)
    assert reconcile_documents.apply().get() == 0  # asked a moment ago: not yet stale
    monkeypatch.setenv("VOUCHERS_PACKAGE_RETRY_SECONDS", "0")
    worker_runtime.cache_clear()
    assert reconcile_documents.apply().get() == 1
    requests = _build_requests(runtime)
    assert len(requests) > 1 and all(r == built for r in requests)  # same source_ref: documents builds once
    package_status.apply(kwargs={"source_ref": built["source_ref"], "package_id": "pkg-1",
                                 "status": "packaged"}).get()
    assert reconcile_documents.apply().get() == 0


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_vouchers_documents_register_numbers_are_gapless_under_concurrency(vouchers_pg_runtime,
                                                                          vouchers_auth):
    """Concurrent filings on PostgreSQL take register numbers 1..n, none twice, none skipped."""
    comuni = ["ardesio", "gromo", "parre", "onore", "cerete", "colere", "azzone", "oneta"]
    app = create_app(runtime=vouchers_pg_runtime)
    barrier = threading.Barrier(len(comuni))
    statuses: list[int] = []

    def file(comune: str) -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(client.post("/api/vouchers/reimbursements", json=_request(comune, 1000),
                                    headers={**vouchers_auth(), **_key()}).status_code)

    threads = [threading.Thread(target=file, args=(comune,)) for comune in comuni]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with vouchers_pg_runtime.session_factory() as session:
        numbers = sorted(session.scalars(select(SealedDocument.register_number)).all())
    assert statuses == [201] * len(comuni)
    assert numbers == list(range(1, len(comuni) + 1))
